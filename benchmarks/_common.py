"""Shared pieces of the benchmark scripts: real helm_mmlu data, timing, peak memory.

The benchmarks read ../shared/data/helm_mmlu.parquet (beside the checkout) and the embedding
cache under resources/embedding_cache (filled by any workflow run with default settings); a text
missing from the cache is embedded, which is slow the first time only.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import polars as pl

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from llmrouter import knn  # noqa: E402
from llmrouter.benchmark import correctness_table  # noqa: E402
from llmrouter.embedding import EmbeddingSettings, embed_texts  # noqa: E402
from llmrouter.pool import Pool, build_pool, select_models  # noqa: E402

HELM_MMLU = REPO.parent / "shared" / "data" / "helm_mmlu.parquet"
EMBEDDING_CACHE = REPO / "resources" / "embedding_cache"


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


@contextmanager
def timed(store: dict, name: str) -> Iterator[None]:
    """Record the wall time of the block in store[name] (seconds)."""
    start = time.perf_counter()
    yield
    store[name] = time.perf_counter() - start


def require_data() -> Path:
    """The helm_mmlu table, or exit saying that ../shared is missing."""
    if not HELM_MMLU.exists():
        raise SystemExit(f"{HELM_MMLU} is absent: the benchmarks need ../shared beside the repo")
    return HELM_MMLU


def helm_mmlu_tables(exclude: tuple[str, ...] = ()) -> dict[str, pl.DataFrame]:
    """Cleaned correctness tables of every helm_mmlu subject, as the workflow makes them."""
    frame = pl.read_parquet(require_data())
    if exclude:
        frame = frame.filter(~pl.col("model").is_in(list(exclude)))
    tables = {}
    for name in sorted(frame["dataset"].unique().to_list()):
        tables[name], _ = correctness_table(frame.filter(pl.col("dataset") == name), name, 0.5)
    return tables


def helm_mmlu_pool(
    exclude: tuple[str, ...] = (), settings: EmbeddingSettings | None = None, threads: int = 2
) -> tuple[Pool, np.ndarray]:
    """The helm_mmlu pool and its unit-norm float32 embeddings (n_instances, 384), pool order."""
    tables = helm_mmlu_tables(exclude)
    present = {n: set(t["model"].unique().to_list()) for n, t in tables.items()}
    models, _ = select_models(present, None, None)
    pool, _ = build_pool(tables, models)
    text_of = {}
    for table in tables.values():
        for row in table.select("dataset", "instance_id", "text").unique(
                ["dataset", "instance_id"]).iter_rows():
            text_of[(row[0], row[1])] = row[2]
    names = np.asarray(pool.datasets)[pool.dataset_of]
    texts = [text_of[(d, i)] for d, i in zip(names, pool.instance_ids)]
    vectors = embed_texts(texts, settings or EmbeddingSettings(), EMBEDDING_CACHE,
                          threads=threads, progress=False)
    return pool, knn.normalize(vectors)


def report(name: str, results: dict) -> None:
    """Print a benchmark's results as one JSON line (run_all.py collects them)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    results = {"benchmark": name, "cpu_count": os.cpu_count(), **results,
               "peak_rss_mib": round(peak_rss_mib(), 1),
               "peak_rss_children_mib": round(children, 1)}
    print("RESULT " + json.dumps(results, default=float))
