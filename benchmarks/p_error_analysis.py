"""Where the error of p(t, m) comes from: an analysis of a finished strict run.

p(t, m) estimates the accuracy of m's thresholded kNN predictor on the held-out task t. This
script splits its error on a finished workflow run (results folder with pool/ and neighbours/):

1. the `agreement` estimate p = S2 S1 + (1 - S2)(1 - S1) (no fitting);
2. the same formula with the model's TRUE accuracy a on t in place of S1: what is left when
   S1 is perfect, i.e. how far the predictor is from independent of the truth;
3. the error of S1 as an estimate of a, before and after removing each task's mean shift
   (the part shared by every model on that task), and the tasks with the largest shifts;
4. what reaching the issue's target (0.05) would take: the p error of an oracle that knows
   every model's true accuracy except the task's shared shift, and the smallest share lambda of
   each task's true shift that S1 + lambda shift needs to get to 0.05.

    .venv/bin/python benchmarks/p_error_analysis.py [--results benchmarks/out/noop/results]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import polars as pl

from _common import REPO  # noqa: F401  (puts the repository on sys.path)

from llmrouter import scores
from llmrouter.knn import Neighbours
from llmrouter.pool import Pool
from llmrouter.routing import RoutingParams, task_predictions
from llmrouter.shift import shifted_p
from llmrouter.smoother import agreement
from llmrouter.store import read_neighbours, read_pool


def load_run(results: Path) -> tuple[Pool, dict[str, Neighbours]]:
    """The pool and every task's neighbour lists of a finished run."""
    pool = read_pool(results / "pool" / "correctness.parquet",
                     results / "pool" / "models.parquet")
    return pool, {task: read_neighbours(results / "neighbours" / f"{task}.parquet")[1]
                  for task in pool.datasets}


def per_task_model(pool: Pool, neighbours: dict[str, Neighbours],
                   params: RoutingParams) -> pl.DataFrame:
    """One row per (task, model), tasks in pool order and models in pool order within each:
    S1, S2, true accuracy a, p_true and the task's u, each task held out (strict: its own
    dataset is never in its neighbour lists)."""
    frames = []
    for task in pool.datasets:
        g, u = task_predictions(neighbours[task], pool, params)
        correct = pool.correct[pool.rows(task)]
        frames.append(pl.DataFrame({
            "task": [task] * len(pool.models), "model": pool.models,
            "s1": scores.s1(g, params.k), "s2": scores.s2(g, params.threshold),
            "a": correct.mean(axis=0, dtype=np.float64),
            "p_true": scores.predictor_accuracy(g, correct, params.threshold),
            "u": [u] * len(pool.models)}))
    return pl.concat(frames)


TARGET = 0.05  # issue 4's target for the mean |p - p_true|
LAMBDAS = np.round(np.arange(0.0, 1.001, 0.01), 2)


def shift_share_needed(s1: np.ndarray, s2: np.ndarray, task_shift: np.ndarray,
                       p_true: np.ndarray, target: float = TARGET) -> float:
    """Smallest lambda of LAMBDAS for which p of a_hat = S1 + lambda * (the task's true mean
    shift), clipped to [0, 1] as the workflow does, has mean |p - p_true| <= target; nan if
    none does."""
    for lam in LAMBDAS:
        if np.abs(shifted_p(s1, s2, lam * task_shift) - p_true).mean() <= target:
            return float(lam)
    return float("nan")


def analysis(table: pl.DataFrame) -> dict:
    """The error decomposition of the `agreement` estimate of p (see the module docstring)."""
    t = table.with_columns(shift=pl.col("a") - pl.col("s1"))
    t = t.with_columns(task_shift=pl.col("shift").mean().over("task"))
    s1, s2, a, task_shift, p_true = (t[c].to_numpy()
                                     for c in ("s1", "s2", "a", "task_shift", "p_true"))
    worst = (t.group_by("task").agg(pl.col("task_shift").first(), pl.col("a").mean())
             .sort(pl.col("task_shift").abs(), descending=True).head(5))
    return {
        "p_error_agreement": float(np.abs(agreement(s1, s2) - p_true).mean()),
        "p_error_with_true_accuracy": float(np.abs(agreement(a, s2) - p_true).mean()),
        "s1_error": float(t["shift"].abs().mean()),
        "s1_error_without_task_shift": float((t["shift"] - t["task_shift"]).abs().mean()),
        "p_error_all_but_task_shift": float(np.abs(
            shifted_p(a, s2, -task_shift) - p_true).mean()),
        "shift_share_needed": shift_share_needed(s1, s2, task_shift, p_true),
        "largest_task_shifts": worst.rows(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path,
                        default=Path(__file__).parent / "out" / "noop" / "results")
    args = parser.parse_args()
    if not (args.results / "pool" / "correctness.parquet").exists():
        raise SystemExit(f"{args.results}: no finished run (pool/correctness.parquet missing); "
                         "build one first, e.g. benchmarks/bench_noop.py --repeats 1")
    out = analysis(per_task_model(*load_run(args.results), RoutingParams(mode="strict")))
    rows = [
        ("mean |p - p_true| of agreement (S1 as the accuracy)", out["p_error_agreement"]),
        ("the same, the true accuracy a in place of S1", out["p_error_with_true_accuracy"]),
        ("the same, a minus the task's shared shift in place of S1",
         out["p_error_all_but_task_shift"]),
        ("mean |S1 - a|", out["s1_error"]),
        ("mean |S1 - a| after removing each task's mean shift",
         out["s1_error_without_task_shift"]),
        (f"share of each task's shift S1 must gain to reach {TARGET}",
         out["shift_share_needed"]),
    ]
    for label, value in rows:
        print(f"{label + ':':60s} {value:.4f}")
    print("largest task shifts (task, mean of a - S1 over models, mean accuracy):")
    for task, shift, acc in out["largest_task_shifts"]:
        print(f"  {task:40s} {shift:+.3f}  {acc:.3f}")


if __name__ == "__main__":
    main()
