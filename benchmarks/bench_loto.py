"""End to end: the whole leave-one-task-out evaluation of helm_mmlu, library vs naive baseline.

Library: one exact neighbour search per task (llmrouter.knn.search, blockwise, partial
selection) reused for every pool, smoother pairs, scores, picks and the summary, in strict and
reference mode, exactly as the workflow's scripts compose them.

Baseline: the reference code's approach, written here in plain numpy: for every held-out task
refit a kNN on the rest of the pool, i.e. the full distance matrix of the task's points to the
pool and a full argsort of every row. Reference mode needs one such pass (57 refits). Strict
mode needs, per held-out task t, the pairs of every other task d with t out of its pool too
(57 x 56 refits); that is timed on --strict-sample held-out tasks and scaled to all 57 (the cost
per held-out task is nearly the same for every t, the figure says how many were timed).
Both sides score with the same library functions, so the picks must agree; the script checks it.
Embeddings come from the cache (their loading is not timed).

    .venv/bin/python benchmarks/bench_loto.py [--strict-sample 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import polars as pl

from _common import helm_mmlu_pool, report, timed

from llmrouter import evaluation, knn, scores
from llmrouter.pool import Pool
from llmrouter.routing import (Pairs, RoutingParams, all_smoother_pairs, score_task,
                               task_baselines, task_predictions)


def _drop(pairs: Pairs, name: str) -> Pairs:
    """The pairs without `name`'s own (reference mode scores a task with the others')."""
    keep = [i for i, d in enumerate(pairs.datasets) if d != name]
    return Pairs([pairs.datasets[i] for i in keep], pairs.u[keep], pairs.acc[keep])


def exact_neighbours(pool: Pool, vectors: np.ndarray, params: RoutingParams) -> dict:
    """Each task's neighbour lists (its own dataset excluded), one exact search per task."""
    width = max(params.k, params.descriptor_k)
    return {
        name: knn.search(vectors[pool.rows(name)], vectors, pool.dataset_of, width,
                         exclude_dataset=code)
        for code, name in enumerate(pool.datasets)
    }


def library_loto(pool: Pool, vectors: np.ndarray | None, params: RoutingParams,
                 neighbours: dict | None = None) -> tuple[pl.DataFrame, dict]:
    """Every task's scores (the workflow's results/scores/*.parquet, concatenated) + timings.
    neighbours: lists found elsewhere (the approximate index); else an exact search."""
    times: dict[str, float] = {}
    strict = params.mode == "strict"
    with timed(times, "search_s"):
        if neighbours is None:
            neighbours = exact_neighbours(pool, vectors, params)
    with timed(times, "pairs_s"):
        every = all_smoother_pairs(pool, neighbours, params,
                                   [None] + (pool.datasets if strict else []))
        base, nested = every[None], every
    with timed(times, "scores_s"):
        accuracy = pool.task_accuracy()
        frames = []
        for name in pool.datasets:
            g, u = task_predictions(neighbours[name], pool, params)
            pairs = nested[name] if strict else _drop(base, name)
            bma_scores, tiebreak = task_baselines(pool, name, params.mode, accuracy)
            frames.append(score_task(name, g, u, pairs, bma_scores, tiebreak, pool.models,
                                     params, pool.correct[pool.rows(name)]))
        table = pl.concat(frames)
        evaluation.summary(table)
    return table, times


def naive_refit(vectors: np.ndarray, pool: Pool, queries: np.ndarray, left_out: list[int],
                params: RoutingParams) -> tuple[np.ndarray, float]:
    """The reference approach for one pool: full distances, full argsort. -> (g, u)."""
    train = np.flatnonzero(~np.isin(pool.dataset_of, left_out))
    dist = 1.0 - vectors[queries] @ vectors[train].T
    order = np.argsort(dist, axis=1)
    rows = train[order[:, : params.k]]
    g = pool.correct[rows].mean(axis=1, dtype=np.float32)
    near = np.take_along_axis(dist, order[:, : params.descriptor_k], axis=1)
    return g, knn.knn_descriptor(near)


def naive_loto(pool: Pool, vectors: np.ndarray, params: RoutingParams,
               heldouts: list[str]) -> tuple[pl.DataFrame, dict]:
    """Baseline scores of `heldouts` (all tasks in reference mode) + timings."""
    times: dict[str, float] = {}
    strict = params.mode == "strict"
    start = time.perf_counter()
    first = {}  # one leave-one-task-out pass: g and u of every task, pool minus that task
    for code, name in enumerate(pool.datasets):
        first[name] = naive_refit(vectors, pool, pool.rows(name), [code], params)
    times["first_pass_s"] = time.perf_counter() - start

    def pair(name: str, g: np.ndarray, u: float) -> tuple[float, np.ndarray]:
        return u, scores.predictor_accuracy(g, pool.correct[pool.rows(name)], params.threshold)

    base = {n: pair(n, *first[n]) for n in pool.datasets}
    accuracy = pool.task_accuracy()
    frames = []
    nested_start = time.perf_counter()
    for name in heldouts:
        code = pool.datasets.index(name)
        names = [d for d in pool.datasets if d != name]
        if strict:  # refit every other task's pool with the held-out task left out as well
            values = [pair(d, *naive_refit(vectors, pool, pool.rows(d),
                                           [code, pool.datasets.index(d)], params)) for d in names]
        else:
            values = [base[d] for d in names]
        pairs = Pairs(names, np.array([v[0] for v in values]), np.vstack([v[1] for v in values]))
        g, u = first[name]
        bma_scores, tiebreak = task_baselines(pool, name, params.mode, accuracy)
        frames.append(score_task(name, g, u, pairs, bma_scores, tiebreak, pool.models, params,
                                 pool.correct[pool.rows(name)]))
    times["per_heldout_s"] = time.perf_counter() - nested_start
    return pl.concat(frames), times


def pick_table(table: pl.DataFrame) -> pl.DataFrame:
    """Each task's pick per method, in a stable order (to compare two runs' picks)."""
    return evaluation.picks(table).select("task", "method", "model").sort("task", "method")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strict-sample", type=int, default=3,
                        help="held-out tasks the strict baseline is timed on (57 = all)")
    parser.add_argument("--repeats", type=int, default=3, help="library runs (best is kept)")
    args = parser.parse_args()

    start = time.perf_counter()
    pool, vectors = helm_mmlu_pool()
    load_s = time.perf_counter() - start
    n_tasks = len(pool.datasets)
    print(f"helm_mmlu: {len(pool.instance_ids)} instances x {len(pool.models)} models, "
          f"{n_tasks} tasks (pool + cached embeddings loaded in {load_s:.1f} s)")
    out = {"instances": len(pool.instance_ids), "models": len(pool.models), "tasks": n_tasks}
    for mode in ("strict", "reference"):
        params = RoutingParams(mode=mode)
        runs = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            table, parts = library_loto(pool, vectors, params)
            runs.append((time.perf_counter() - t0, parts))
        lib_s, parts = min(runs, key=lambda r: r[0])
        if mode == "reference":
            heldouts = pool.datasets
        else:
            step = max(1, n_tasks // max(1, args.strict_sample))
            heldouts = pool.datasets[::step][: args.strict_sample]
        t0 = time.perf_counter()
        naive, naive_parts = naive_loto(pool, vectors, params, heldouts)
        naive_s = time.perf_counter() - t0
        # Scale the per-held-out part of the strict baseline to all tasks.
        scale = n_tasks / len(heldouts)
        naive_full_s = naive_parts["first_pass_s"] + naive_parts["per_heldout_s"] * scale
        mine = pick_table(table.filter(pl.col("task").is_in(heldouts)))
        theirs = pick_table(naive)
        differ = mine.join(theirs, on=["task", "method"], suffix="_naive").filter(
            pl.col("model") != pl.col("model_naive"))
        ratio = naive_full_s / lib_s
        timed_part = "" if scale == 1 else (f" (timed {len(heldouts)} of {n_tasks} held-out "
                                            f"tasks: {naive_s:.1f} s, scaled)")
        print(f"[{mode}] library: {lib_s:.2f} s (best of {args.repeats}; search "
              f"{parts['search_s']:.2f}, pairs {parts['pairs_s']:.2f}, scores "
              f"{parts['scores_s']:.2f}) | naive refit: {naive_full_s:.1f} s"
              f"{timed_part}"
              f" | ratio {ratio:.0f}x | picks differing: {differ.height} of {mine.height}")
        if differ.height:
            print(differ)
        out[mode] = {"library_s": lib_s, **parts, "naive_s": naive_full_s,
                     "naive_timed_s": naive_s, "naive_heldouts_timed": len(heldouts),
                     "ratio": ratio, "picks_compared": mine.height,
                     "picks_differing": differ.height}
    report("loto", out)


if __name__ == "__main__":
    main()
