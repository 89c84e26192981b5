"""Scaling: the strict leave-one-task-out evaluation on synthetic scale-ups of helm_mmlu.

Cases (each in its own process, so each peak memory is its own):
  instances-x10   every instance copied 10 times (140,150 x 78, the pool's), exact neighbours
  instances-x100  every instance copied 100 times (1.4 million x 79), approximate index
                  (llmrouter.ann: k-means cells inside each dataset; cells probed tuned on a
                  sample until recall >= 0.95)
  models-5000     the pool's 14,015 real instances x 5,000 synthetic models, exact neighbours
A copy's embedding is the real one plus Gaussian noise (cosine about 0.95 to the original,
renormalised), in the original's dataset, with the original's correctness, each cell flipped
with probability 0.05. A synthetic model resamples a real model's correctness column and flips
each cell with probability 0.1. Correctness is uint8 throughout (1 byte per cell).
Recall: share of the exact lists (2K = 38 long, and the first 5) found by the index, on a
seeded sample of queries. The baseline for the exact cases is the real-size run (ratio of
times against the ratio of work), printed alongside.

    .venv/bin/python benchmarks/bench_scale.py [--cases instances-x10 models-5000 ...]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np

from _common import helm_mmlu_pool, peak_rss_mib, report

from bench_loto import exact_neighbours, library_loto
from llmrouter import ann, knn
from llmrouter.pool import Pool
from llmrouter.routing import RoutingParams

CASES = ["real", "instances-x10", "instances-x100", "models-5000"]


def scale_instances(pool: Pool, vectors: np.ndarray, factor: int, seed: int = 0,
                    noise: float = 0.017, flip: float = 0.05) -> tuple[Pool, np.ndarray]:
    """`factor` perturbed copies of every instance, kept in its dataset (rows stay grouped)."""
    rng = np.random.default_rng(seed)
    source = np.repeat(np.arange(len(vectors)), factor)  # pool order is by dataset already
    out = np.empty((len(source), vectors.shape[1]), dtype=np.float32)
    correct = np.empty((len(source), pool.correct.shape[1]), dtype=np.uint8)
    step = 1 << 16
    for s in range(0, len(source), step):
        rows = source[s : s + step]
        block = vectors[rows] + noise * rng.standard_normal((len(rows), vectors.shape[1]),
                                                            dtype=np.float32)
        out[s : s + step] = knn.normalize(block)
        correct[s : s + step] = pool.correct[rows] ^ (rng.random(
            (len(rows), correct.shape[1]), dtype=np.float32) < flip).astype(np.uint8)
    scaled = Pool(pool.datasets, pool.dataset_of[source],
                  np.char.add(pool.instance_ids[source], "~"), pool.models, correct)
    return scaled, out


def scale_models(pool: Pool, n_models: int, seed: int = 0, flip: float = 0.1) -> Pool:
    """n_models synthetic models, each a real model's column with cells flipped."""
    rng = np.random.default_rng(seed)
    parent = rng.integers(0, pool.correct.shape[1], n_models)
    correct = np.empty((len(pool.correct), n_models), dtype=np.uint8)
    for s in range(0, n_models, 500):
        cols = parent[s : s + 500]
        correct[:, s : s + 500] = pool.correct[:, cols] ^ (
            rng.random((len(pool.correct), len(cols)), dtype=np.float32) < flip)
    models = [f"synthetic-{i:05d}" for i in range(n_models)]
    return Pool(pool.datasets, pool.dataset_of, pool.instance_ids, models, correct)


def approximate_neighbours(pool: Pool, vectors: np.ndarray, params: RoutingParams,
                           threads: int, sample: int, target: float,
                           query_share: float = 1.0, cell_size: int = 128,
                           probes: tuple[int, ...] = (16, 24, 32, 48, 64, 128),
                           ) -> tuple[dict, dict]:
    """Each task's lists from one cell index (llmrouter.ann); the cells probed are the first
    of `probes` whose recall on a query sample reaches `target` (that tuning is timed apart).
    query_share < 1: only that seeded share of each task's queries is searched (timing)."""
    info: dict = {}
    width = max(params.k, params.descriptor_k)
    start = time.perf_counter()
    cells = ann.assign_cells(vectors, pool.dataset_of, cell_size, threads=threads)
    index = ann.make_index(vectors, pool.dataset_of, cells)
    info["build_s"] = time.perf_counter() - start
    info["cells"] = index.n_cells
    info["cell_size"] = cell_size
    rng = np.random.default_rng(1)
    # Whole cells, not scattered rows: the search runs a cell's queries together and their
    # probes pool, so scattered rows would understate the recall of the full run.
    picked, probe_rows = rng.permutation(index.n_cells), []
    for cell in picked:
        probe_rows.append(index.order[index.starts[cell]:index.ends[cell]])
        if sum(map(len, probe_rows)) >= sample:
            break
    probe_rows = np.sort(np.concatenate(probe_rows))
    by_code = {c: probe_rows[pool.dataset_of[probe_rows] == c] for c in range(len(pool.datasets))}
    start = time.perf_counter()
    exact = {c: knn.search(vectors[r], vectors, pool.dataset_of, width, exclude_dataset=c)
             for c, r in by_code.items() if len(r)}
    info["exact_sample_s"] = time.perf_counter() - start
    tried = {}
    start = time.perf_counter()
    for n_probe in probes:
        found = {c: ann.search(index, vectors[by_code[c]], width, exclude_dataset=c,
                               n_probe=n_probe, query_cells=cells[by_code[c]])
                 for c in exact}
        hits = {depth: float(np.average(
            [ann.recall(found[c], exact[c], depth) for c in exact],
            weights=[len(by_code[c]) for c in exact])) for depth in (2 * width, params.k)}
        tried[n_probe] = hits
        print(f"  n_probe {n_probe}: recall@{2 * width} {hits[2 * width]:.4f}, "
              f"recall@{params.k} {hits[params.k]:.4f}", flush=True)
        if hits[2 * width] >= target:
            break
    info["tuning_s"] = time.perf_counter() - start
    info["n_probe"] = n_probe
    info["recall"] = tried
    start = time.perf_counter()
    neighbours, searched = {}, 0
    for code, name in enumerate(pool.datasets):
        rows = pool.rows(name)
        if query_share < 1:
            rows = rows[rng.random(len(rows)) < query_share]
        searched += len(rows)
        neighbours[name] = ann.search(index, vectors[rows], width, exclude_dataset=code,
                                      n_probe=n_probe, query_cells=cells[rows])
    info["search_s"] = time.perf_counter() - start
    info["queries_searched"] = searched
    info["search_all_s"] = info["search_s"] * len(vectors) / max(1, searched)
    return neighbours, info


def run_case(case: str, threads: int, sample: int, target: float,
             query_share: float = 1.0, cell_size: int = 128) -> dict:
    start = time.perf_counter()
    pool, vectors = helm_mmlu_pool()
    out: dict = {"case": case, "load_s": time.perf_counter() - start}
    start = time.perf_counter()
    if case.startswith("instances-x"):
        pool, vectors = scale_instances(pool, vectors, int(case.split("x")[1]))
    elif case.startswith("models-"):
        pool = scale_models(pool, int(case.split("-")[1]))
    out["generate_s"] = time.perf_counter() - start
    out["instances"], out["models"] = pool.correct.shape
    out["correctness_mib"] = pool.correct.nbytes / 2**20
    out["embeddings_mib"] = vectors.nbytes / 2**20
    params = RoutingParams(mode="strict")
    start = time.perf_counter()
    if case == "instances-x100":
        neighbours, out["index"] = approximate_neighbours(pool, vectors, params, threads,
                                                          sample, target, query_share,
                                                          cell_size)
        out["neighbour_search"] = "approximate"
        if query_share < 1:  # lists for a share of the queries only: no evaluation on them
            out["neighbours_s"] = time.perf_counter() - start
            out["neighbours_all_s"] = out["index"]["build_s"] + out["index"]["search_all_s"]
            out["peak_rss_mib"] = peak_rss_mib()
            return out
    else:
        neighbours = exact_neighbours(pool, vectors, params)
        out["neighbour_search"] = "exact"
    out["neighbours_s"] = time.perf_counter() - start
    if "index" in out:  # recall tuning and its exact sample are the benchmark's, not the run's
        out["neighbours_s"] -= out["index"]["tuning_s"] + out["index"]["exact_sample_s"]
    _, parts = library_loto(pool, None, params, neighbours)
    out.update({k: v for k, v in parts.items() if k != "search_s"})
    out["evaluation_s"] = out["neighbours_s"] + parts["pairs_s"] + parts["scores_s"]
    out["peak_rss_mib"] = peak_rss_mib()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=CASES, choices=CASES + [
        f"instances-x{f}" for f in (2, 5)])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--recall-sample", type=int, default=2000)
    parser.add_argument("--recall-target", type=float, default=0.95)
    parser.add_argument("--query-share", type=float, default=1.0,
                        help="x100: search only this share of the queries and scale the time "
                             "(the evaluation after the search is then not run)")
    parser.add_argument("--cell-size", type=int, default=128,
                        help="x100: rows per cell of the approximate index")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(run_case(args.worker, args.threads, args.recall_sample,
                                  args.recall_target, args.query_share, args.cell_size),
                         default=float))
        return
    results = {}
    for case in args.cases:
        print(f"{case}: running ...", flush=True)
        done = subprocess.run([sys.executable, __file__, "--worker", case, "--threads",
                               str(args.threads), "--recall-sample", str(args.recall_sample),
                               "--recall-target", str(args.recall_target),
                               "--query-share", str(args.query_share),
                               "--cell-size", str(args.cell_size)],
                              stdout=subprocess.PIPE, text=True)
        if done.returncode != 0:
            print(f"{case}: FAILED (exit {done.returncode})")
            results[case] = {"failed": done.returncode}
            continue
        lines = done.stdout.strip().splitlines()
        print("\n".join(lines[:-1]))
        res = json.loads(lines[-1])
        results[case] = res
        extra = ""
        if "index" in res:
            idx = res["index"]
            rec = idx["recall"][str(idx["n_probe"])] if str(idx["n_probe"]) in idx["recall"] \
                else idx["recall"][idx["n_probe"]]
            extra = (f" | index: {idx['cells']} cells, build {idx['build_s']:.0f} s, n_probe "
                     f"{idx['n_probe']}, recall@38 {rec['38']:.4f}, recall@5 {rec['5']:.4f}")
        if "evaluation_s" not in res:
            print(f"{case}: {res['instances']} x {res['models']} | neighbours for "
                  f"{res['index']['queries_searched']} queries in {res['neighbours_s']:.1f} s, "
                  f"all {res['instances']} scaled: {res['neighbours_all_s']:.0f} s | peak RSS "
                  f"{res['peak_rss_mib']:.0f} MiB" + extra, flush=True)
            continue
        print(f"{case}: {res['instances']} x {res['models']} | evaluation "
              f"{res['evaluation_s']:.1f} s "
              f"(neighbours {res['neighbours_s']:.1f}, pairs {res['pairs_s']:.1f}, scores "
              f"{res['scores_s']:.1f}) | data made in {res['generate_s']:.1f} s | correctness "
              f"{res['correctness_mib']:.0f} MiB | peak RSS {res['peak_rss_mib']:.0f} MiB"
              + extra, flush=True)
    if "real" in results and "failed" not in results["real"]:
        base = results["real"]
        for case, res in results.items():
            if case == "real" or "failed" in res or "evaluation_s" not in res:
                continue
            print(f"{case}: {res['evaluation_s'] / base['evaluation_s']:.1f}x the real-size time "
                  f"for {res['instances'] / base['instances']:.0f}x instances, "
                  f"{res['models'] / base['models']:.0f}x models")
    report("scale", results)


if __name__ == "__main__":
    main()
