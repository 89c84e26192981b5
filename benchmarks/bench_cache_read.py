"""Reading the embedding cache (`embedding.read_cache`) at scale: hashes first, vectors only of
the shards that hold a wanted text.

A synthetic cache in benchmarks/out/cache_read/ (git-ignored) shaped like helm_mmlu's at
`--scale` times its size: 13,937 x scale random unit vectors of 384 floats in shards of 512,
and a dataset's texts drawn at random from all of them, as embed_all_texts' shuffled batches
spread them. Timed, best of
`--repeats`, against the previous implementation (baseline, in the same run: every shard's
hashes and vectors read, then filtered), for two lookups:

- a new task's 30 prompts, in no shard (embed_new_task);
- one dataset's texts, 1/57 of them, spread over (nearly) every shard (embed_dataset).

Both implementations must find the same vectors.

    .venv/bin/python benchmarks/bench_cache_read.py [--scale 10] [--repeats 3]
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from _common import REPO, report

from llmrouter.artifacts import column_matrix  # noqa: E402
from llmrouter.embedding import read_cache, text_hash, write_shard  # noqa: E402

FOLDER = REPO / "benchmarks" / "out" / "cache_read"
HELM_MMLU_TEXTS, SHARD, DIM, DATASETS = 13_937, 512, 384, 57


def read_all(cache_dir: Path, hashes: list[str]) -> dict[str, np.ndarray]:
    """The implementation before 2026-12-07: every shard read whole (pq.read_table, as
    artifacts.read_table did), then filtered."""
    wanted = pl.Series(list(set(hashes)))
    found: dict[str, np.ndarray] = {}
    for shard in sorted(cache_dir.glob("*.parquet")):
        table = pq.read_table(shard)
        frame = pl.from_arrow(table.select(["text_hash"]))
        keep = frame["text_hash"].is_in(wanted.implode()).to_numpy()
        if keep.any():
            found.update(zip(frame["text_hash"].to_numpy()[keep],
                             column_matrix(table, "vector")[keep]))
    return found


def build_cache(n_texts: int, folder: Path) -> list[str]:
    """Shards of random unit vectors; returns the texts' hashes in shard order."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    hashes = [text_hash(f"text {i}") for i in range(n_texts)]
    for start in range(0, n_texts, SHARD):
        vectors = rng.standard_normal((min(SHARD, n_texts - start), DIM), dtype=np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        write_shard(folder, hashes[start:start + SHARD], vectors)
    return hashes


def best_of(repeats: int, read, hashes: list[str]) -> tuple[float, dict]:
    times, found = [], {}
    for _ in range(repeats):
        start = time.perf_counter()
        found = read(FOLDER, hashes)
        times.append(time.perf_counter() - start)
    return min(times), found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    n_texts = HELM_MMLU_TEXTS * args.scale
    start = time.perf_counter()
    hashes = build_cache(n_texts, FOLDER)
    size_mb = sum(p.stat().st_size for p in FOLDER.glob("*.parquet")) / 1e6
    print(f"cache: {n_texts} vectors in {len(list(FOLDER.glob('*.parquet')))} shards, "
          f"{size_mb:.0f} MB, written in {time.perf_counter() - start:.1f} s")
    rng = np.random.default_rng(1)
    lookups = {
        "new task (30 prompts, in no shard)": [text_hash(f"prompt {i}") for i in range(30)],
        "one dataset (1/57 of the texts)": [hashes[i] for i in rng.choice(
            n_texts, n_texts // DATASETS, replace=False)],
    }
    results = {}
    for name, wanted in lookups.items():
        base_s, base = best_of(args.repeats, read_all, wanted)
        new_s, new = best_of(args.repeats, read_cache, wanted)
        if base.keys() != new.keys() or any(not np.array_equal(base[h], new[h]) for h in base):
            raise SystemExit(f"{name}: the two implementations found different vectors")
        print(f"{name}: {new_s:.3f} s, before {base_s:.3f} s ({base_s / new_s:.1f}x), "
              f"{len(new)} found")
        results[name] = {"seconds": new_s, "baseline_seconds": base_s,
                         "ratio": base_s / new_s, "found": len(new)}
    shutil.rmtree(FOLDER)
    report("bench_cache_read", {"scale": args.scale, "texts": n_texts, "cache_mb": size_mb,
                                "lookups": results})


if __name__ == "__main__":
    main()
