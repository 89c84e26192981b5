"""Embedding stage: throughput of each setting against the reference setting, and agreement.

Each setting runs in its own process (clean threads, its own peak memory) on the same sample of
helm_mmlu questions: load the model, warm up, time `encode` of the sample (or, for the
`workflow` rows, the workflow's own padded batches: llmrouter.embedding.embed_batches, which
make a text's vector independent of the texts embedded with it). Baseline: the
reference protocol (torch float32, batch 64). Agreement with float32: mean / min cosine of the
vectors, and the share of texts whose 5 nearest neighbours (cosine, within the sample) are the
same set. With --routing the whole helm_mmlu table is also embedded with the fastest setting
(through the cache) and the strict leave-one-task-out picks are compared with float32's.

    .venv/bin/python benchmarks/bench_embedding.py [--texts 2000] [--threads 2] [--routing]
        [--onnx-python /tmp/onnxvenv/bin/python]
    .venv/bin/python benchmarks/bench_embedding.py --thread-stability 300

--thread-stability N embeds N texts the workflow's way with 1 thread and with --threads, in
float32 and bfloat16, and prints the share of vectors that are bit-identical and the largest
difference (the padded batches make a vector independent of the other texts, not of threads).

--onnx-python adds ONNX Runtime int8 (dynamic quantization, batch 16), measured by
embedding_onnx_worker.py in an interpreter that has sentence-transformers[onnx]: that extra
pins older transformers than the workflow's, so it is kept out of the workflow's environment.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from _common import EMBEDDING_CACHE, helm_mmlu_pool, peak_rss_mib, report, require_data

from llmrouter import embedding
from llmrouter.embedding import EmbeddingSettings, cpu_has_fast_bfloat16, load_model

SETTINGS = [  # (name, precision, batch size, batching); the first is the baseline
    ("torch fp32 batch 64 (reference)", "float32", 64, "encode"),
    ("torch fp32 batch 16", "float32", 16, "encode"),
    ("torch bf16 batch 8", "bfloat16", 8, "encode"),
    ("torch bf16 batch 16", "bfloat16", 16, "encode"),
    ("torch bf16 batch 32", "bfloat16", 32, "encode"),
    ("workflow fp32 batch 8 (padded batches)", "float32", 8, "padded"),
    ("workflow bf16 batch 8 (padded batches)", "bfloat16", 8, "padded"),
]


def sample_texts(n: int, seed: int = 0) -> list[str]:
    """n distinct helm_mmlu texts, a seeded sample."""
    texts = pl.read_parquet(require_data(), columns=["text"])["text"].unique().sort()
    rng = np.random.default_rng(seed)
    return texts.gather(np.sort(rng.choice(len(texts), n, replace=False))).to_list()


def padded_encode(model, texts: list[str], batch_size: int) -> np.ndarray:
    """(n, dim) the workflow's embed_texts without its cache: padded length batches."""
    out = np.empty((len(texts), model.get_embedding_dimension()), dtype=np.float32)
    hashes = [embedding.text_hash(t) for t in texts]
    for batch, vectors in embedding.embed_batches(model, texts, hashes, batch_size):
        out[batch] = vectors
    return out


def worker(args: argparse.Namespace) -> None:
    texts = sample_texts(args.texts)
    start = time.perf_counter()
    model = load_model(EmbeddingSettings(precision=args.precision, batch_size=args.batch_size),
                       threads=args.threads)
    load_s = time.perf_counter() - start
    if args.batching == "padded":
        padded_encode(model, texts[:64], args.batch_size)
        start = time.perf_counter()
        vectors = padded_encode(model, texts, args.batch_size)
        encode_s = time.perf_counter() - start
    else:
        model.encode(texts[:64], batch_size=args.batch_size)
        start = time.perf_counter()
        vectors = model.encode(texts, batch_size=args.batch_size, normalize_embeddings=True,
                               convert_to_numpy=True)
        encode_s = time.perf_counter() - start
        vectors = np.asarray(vectors, dtype=np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)  # bf16 norms are off ~1e-3
    np.save(args.out, vectors)
    print(json.dumps({"load_s": load_s, "encode_s": encode_s,
                      "texts_per_s": len(texts) / encode_s, "peak_rss_mib": peak_rss_mib()}))


def thread_stability(n_texts: int, threads: int) -> dict:
    """Per precision: share of n_texts vectors bit-identical with 1 and `threads` threads,
    and the largest absolute difference of a coordinate."""
    texts = sample_texts(n_texts)
    out = {}
    for precision in ("float32", "bfloat16"):
        runs = [padded_encode(load_model(EmbeddingSettings(precision=precision), threads=t),
                              texts, EmbeddingSettings().batch_size) for t in (1, threads)]
        diff = np.abs(runs[0] - runs[1]).max(axis=1)
        out[precision] = {"identical": float(np.mean(diff == 0)), "max_diff": float(diff.max())}
    return out


def top5_same(a: np.ndarray, b: np.ndarray, k: int = 5) -> float:
    """Share of rows whose k nearest other rows (cosine) are the same set under a and b."""
    def nearest(v: np.ndarray) -> np.ndarray:
        """(n, k) sorted indices of each row's k most similar other rows."""
        sim = v @ v.T
        np.fill_diagonal(sim, -np.inf)
        return np.sort(np.argpartition(-sim, k, axis=1)[:, :k], axis=1)
    return float(np.mean(np.all(nearest(a) == nearest(b), axis=1)))


def routing_agreement(precision: str, batch_size: int, threads: int) -> dict:
    """Strict leave-one-task-out picks on helm_mmlu with `precision` vs float32 embeddings."""
    from bench_loto import library_loto
    from llmrouter import evaluation
    from llmrouter.routing import RoutingParams

    pool, fp32 = helm_mmlu_pool()
    start = time.perf_counter()
    _, fast = helm_mmlu_pool(settings=EmbeddingSettings(precision=precision,
                                                        batch_size=batch_size), threads=threads)
    embed_s = time.perf_counter() - start
    cosine = np.sum(fp32 * fast, axis=1)
    out = {"instances": len(cosine), "embed_or_cache_s": embed_s,
           "mean_cosine": float(cosine.mean()), "min_cosine": float(cosine.min())}
    params = RoutingParams(mode="strict")
    picks = {}
    for name, vectors in (("fp32", fp32), ("fast", fast)):
        table, _ = library_loto(pool, vectors, params)
        picks[name] = evaluation.picks(table).select("task", "method", "model", "accuracy")
    both = picks["fp32"].join(picks["fast"], on=["task", "method"], suffix="_fast")
    changed = both.filter(pl.col("model") != pl.col("model_fast"))
    out["picks_compared"] = both.height
    out["picks_changed"] = changed.height
    out["changes"] = changed.select("task", "method", "model", "model_fast", "accuracy",
                                    "accuracy_fast").rows()
    means = both.group_by("method").agg(pl.col("accuracy").mean().alias("fp32"),
                                        pl.col("accuracy_fast").mean().alias("fast"))
    out["mean_accuracy"] = {r[0]: {"fp32": r[1], "fast": r[2]} for r in means.sort("method").rows()}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--routing", action="store_true",
                        help="also compare helm_mmlu routing picks (embeds 14k texts once)")
    parser.add_argument("--onnx-python", help="interpreter with sentence-transformers[onnx]: "
                        "adds ONNX Runtime int8")
    parser.add_argument("--thread-stability", type=int, metavar="N",
                        help="only compare N texts' vectors with 1 and --threads threads")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--precision", default="float32", help=argparse.SUPPRESS)
    parser.add_argument("--batch-size", type=int, default=64, help=argparse.SUPPRESS)
    parser.add_argument("--batching", default="encode", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    if args.thread_stability:
        result = thread_stability(args.thread_stability, args.threads)
        for precision, r in result.items():
            print(f"{precision}: 1 vs {args.threads} threads, {args.thread_stability} texts: "
                  f"{r['identical']:.1%} of vectors bit-identical, largest difference "
                  f"{r['max_diff']:.2g}")
        return report("embedding_threads", result)

    fast_bf16 = cpu_has_fast_bfloat16()
    print(f"CPU has fast bfloat16 (AMX / AVX512_BF16): {fast_bf16}; {args.texts} texts, "
          f"{args.threads} threads")
    results, vectors = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, precision, batch, batching in SETTINGS:
            if precision == "bfloat16" and not fast_bf16:
                print(f"{name}: skipped (no fast bfloat16 on this CPU)")
                continue
            out = Path(tmp) / f"{len(vectors)}.npy"
            done = subprocess.run(
                [sys.executable, __file__, "--worker", "--texts", str(args.texts), "--threads",
                 str(args.threads), "--precision", precision, "--batch-size", str(batch),
                 "--batching", batching, "--out", str(out)],
                capture_output=True, text=True, check=True)
            results[name] = json.loads(done.stdout.strip().splitlines()[-1])
            vectors[name] = np.load(out)
        if args.onnx_python:
            texts_file, out = Path(tmp) / "texts.json", Path(tmp) / "onnx.npy"
            texts_file.write_text(json.dumps(sample_texts(args.texts)))
            done = subprocess.run(
                [args.onnx_python, str(Path(__file__).with_name("embedding_onnx_worker.py")),
                 str(texts_file), str(out), "16", str(args.threads)],
                capture_output=True, text=True)
            if done.returncode != 0:
                print(f"ONNX Runtime int8: failed\n{done.stderr[-2000:]}")
            else:
                results["onnx int8 batch 16"] = json.loads(done.stdout.strip().splitlines()[-1])
                vectors["onnx int8 batch 16"] = np.load(out)
    base_name = SETTINGS[0][0]
    base = vectors[base_name]
    rows = []
    for name, res in results.items():
        cos = np.sum(base * vectors[name], axis=1)
        res.update(speedup=res["texts_per_s"] / results[base_name]["texts_per_s"],
                   mean_cosine=float(cos.mean()), min_cosine=float(cos.min()),
                   top5_same=top5_same(base, vectors[name]))
        rows.append(res)
        print(f"{name:40s} {res['texts_per_s']:7.1f} texts/s  x{res['speedup']:.2f}  "
              f"cosine mean {res['mean_cosine']:.6f} min {res['min_cosine']:.6f}  "
              f"top-5 same {res['top5_same']:.3f}  peak {res['peak_rss_mib']:.0f} MiB "
              f"(model load {res['load_s']:.1f} s)")
    out = {"texts": args.texts, "threads": args.threads, "fast_bfloat16": fast_bf16,
           "settings": results}
    if args.routing and fast_bf16:
        fastest = max((r for r in results if "bf16" in r),
                      key=lambda r: results[r]["texts_per_s"])
        batch = next(b for n, _, b, _ in SETTINGS if n == fastest)
        agreement = routing_agreement("bfloat16", batch, args.threads)
        print(f"routing on helm_mmlu, bf16 batch {batch} vs fp32 (cache {EMBEDDING_CACHE}): "
              f"mean cosine {agreement['mean_cosine']:.6f} (min {agreement['min_cosine']:.6f}), "
              f"{agreement['picks_changed']} of {agreement['picks_compared']} picks changed")
        for change in agreement["changes"]:
            print("  changed:", change)
        for method, acc in agreement["mean_accuracy"].items():
            print(f"  {method:10s} mean accuracy fp32 {acc['fp32']:.4f}  bf16 {acc['fast']:.4f}")
        out["routing"] = agreement
    report("embedding", out)


if __name__ == "__main__":
    main()
