"""kNN stage: every held-out task's neighbour lists on helm_mmlu (embeddings cached).

  library      llmrouter.knn.search: blockwise float32 products, bound-pruned selection
  per-dataset  the same search selecting inside every dataset (the previous implementation,
               still the fallback for degenerate data)
  naive        the reference code's approach: per task the full distance matrix to the rest
               of the pool and a full argsort of every row
  approximate  llmrouter.ann (cells of k-means inside each dataset, faiss's k-means), its build
               time and recall against exact
The lists of library and per-dataset must be identical; their first k = 5 must be the naive
top 5 (up to exact distance ties).

    .venv/bin/python benchmarks/bench_knn.py
"""

from __future__ import annotations

import argparse
import time
from unittest import mock

import numpy as np

from _common import helm_mmlu_pool, report

from llmrouter import ann, knn
from llmrouter.pool import Pool


def all_tasks(pool: Pool, vectors: np.ndarray, width: int, **kwargs) -> list[knn.Neighbours]:
    """The workflow's search: every task's lists, its own dataset left out."""
    return [knn.search(vectors[pool.rows(n)], vectors, pool.dataset_of, width,
                       exclude_dataset=c, **kwargs) for c, n in enumerate(pool.datasets)]


def naive(pool: Pool, vectors: np.ndarray, k: int) -> list[np.ndarray]:
    """Baseline: every task's k smallest distances by a full argsort of its distance matrix."""
    out = []
    for code, name in enumerate(pool.datasets):
        train = np.flatnonzero(pool.dataset_of != code)
        dist = 1.0 - vectors[pool.rows(name)] @ vectors[train].T
        order = np.argsort(dist, axis=1)
        out.append(np.take_along_axis(dist, order[:, :k], axis=1))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs")
    args = parser.parse_args()
    pool, vectors = helm_mmlu_pool()
    width, k = 19, 5
    print(f"helm_mmlu: {len(vectors)} x {vectors.shape[1]} embeddings, {len(pool.datasets)} tasks")
    runs: dict[str, list[float]] = {"library_s": [], "per_dataset_s": [], "naive_s": [],
                                    "products_only_s": []}
    for _ in range(args.repeats):  # interleaved, so a burst of load hits every variant alike
        start = time.perf_counter()  # the floor: the same float32 products, nothing selected
        for code, name in enumerate(pool.datasets):
            vectors @ vectors[pool.rows(name)].T
        runs["products_only_s"].append(time.perf_counter() - start)
        start = time.perf_counter()
        lists = all_tasks(pool, vectors, width)
        runs["library_s"].append(time.perf_counter() - start)
        with mock.patch.object(knn, "_capped_lists", lambda *a, **kw: None):
            start = time.perf_counter()
            plain = all_tasks(pool, vectors, width)
            runs["per_dataset_s"].append(time.perf_counter() - start)
        start = time.perf_counter()
        full = naive(pool, vectors, k)
        runs["naive_s"].append(time.perf_counter() - start)
    times = {name: min(values) for name, values in runs.items()}
    print("all runs:", {name: [round(v, 2) for v in values] for name, values in runs.items()})
    # rows too, not only distances: equally distant rows must come in the same order
    identical = all(np.array_equal(a.distance, b.distance) and np.array_equal(a.index, b.index)
                    for a, b in zip(lists, plain))
    top_k = float(np.mean(np.concatenate([
        np.isclose(a.distance[:, :k], f, atol=1e-6).all(axis=1) for a, f in zip(lists, full)])))
    start = time.perf_counter()
    cells = ann.assign_cells(vectors, pool.dataset_of, threads=args.threads)
    index = ann.make_index(vectors, pool.dataset_of, cells)
    times["ann_build_s"] = time.perf_counter() - start
    recall = {}
    for n_probe in (8, 32):
        start = time.perf_counter()
        approx = [ann.search(index, vectors[pool.rows(n)], width, exclude_dataset=c,
                             n_probe=n_probe, query_cells=cells[pool.rows(n)])
                  for c, n in enumerate(pool.datasets)]
        times[f"ann_search_nprobe{n_probe}_s"] = time.perf_counter() - start
        sizes = [len(e.index) for e in lists]
        recall[n_probe] = {
            depth: float(np.average([ann.recall(a, e, depth) for a, e in zip(approx, lists)],
                                    weights=sizes))
            for depth in (2 * width, k)}
    print(f"library {times['library_s']:.2f} s | per-dataset selection "
          f"{times['per_dataset_s']:.2f} s (x{times['per_dataset_s'] / times['library_s']:.1f}) | "
          f"naive full argsort {times['naive_s']:.2f} s "
          f"(x{times['naive_s'] / times['library_s']:.1f})")
    print(f"bare float32 products of the same shapes (the floor): {times['products_only_s']:.2f} s;"
          f" library = {times['library_s'] / times['products_only_s']:.2f}x the floor")
    print(f"lists identical to per-dataset selection: {identical}; first {k} equal to naive "
          f"top {k}: {top_k:.5f} of queries")
    for n_probe, rec in recall.items():
        print(f"approximate ({index.n_cells} cells, build {times['ann_build_s']:.2f} s), "
              f"n_probe {n_probe}: {times[f'ann_search_nprobe{n_probe}_s']:.2f} s, "
              f"recall@{2 * width} {rec[2 * width]:.4f}, recall@{k} {rec[k]:.4f}")
    report("knn", {**times, "identical": identical, "naive_top_k_agreement": top_k,
                   "ratio_naive": times["naive_s"] / times["library_s"],
                   "ratio_per_dataset": times["per_dataset_s"] / times["library_s"],
                   "recall": recall})


if __name__ == "__main__":
    main()
