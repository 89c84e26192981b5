"""Does a higher threshold of the correctness predictor lower the error of p? A study on a
finished strict run (results folder with pool/ and neighbours/).

The issue allows a threshold chosen inside the leave-one-task-out loop. With p from
`agreement`, p - p_true is about (2 S2 - 1)(S1 - a): a threshold that brings S2 towards 1/2
shrinks the error without estimating the accuracy a any better. This script scores every task
(strict, descriptor agreement, the BMA fallback as in the workflow) at the thresholds a k = 5
predictor can tell apart (g > 0.5, 0.7, 0.9: at least 3, 4 or 5 of 5 neighbours right) and
prints mean |p - p_true|, the mean S2, S3's mean accuracy and the share of the BMA -> Oracle
gap S3 closes. Whatever a threshold chosen inside the loop would be, it is one of these rows.

    .venv/bin/python benchmarks/p_error_threshold.py [--results benchmarks/out/noop/results]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import polars as pl

from _common import REPO  # noqa: F401  (puts the repository on sys.path)
from p_error_analysis import load_run

from llmrouter import smoother
from llmrouter.ablation import variant_metrics
from llmrouter.knn import Neighbours
from llmrouter.pool import Pool
from llmrouter.routing import Pairs, RoutingParams, score_task, task_baselines, task_predictions

THRESHOLDS = (0.5, 0.7, 0.9)


def scores_at(pool: Pool, neighbours: dict[str, Neighbours], threshold: float) -> pl.DataFrame:
    """score_task's rows of every task, strict, p from `agreement` at `threshold`."""
    params = RoutingParams(descriptor="agreement", bandwidth=None, threshold=threshold)
    # agreement reads no pairs: a placeholder fills score_task's argument.
    no_pairs = Pairs(["none"], np.zeros(1), np.zeros((1, len(pool.models))))
    frames = []
    for task in pool.datasets:
        g, u = task_predictions(neighbours[task], pool, params)
        p = smoother.agreement_p(g, threshold, params.k)
        bma_scores, tiebreak = task_baselines(pool, task, params.mode)
        frames.append(score_task(task, g, u, no_pairs, bma_scores, tiebreak, pool.models,
                                 params, pool.correct[pool.rows(task)], p)
                      .with_columns(pl.lit(float("nan")).alias("bandwidth")))
    return pl.concat(frames)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path("benchmarks/out/noop/results"))
    args = parser.parse_args()
    pool, neighbours = load_run(args.results)
    print(f"{'threshold':>9}  {'p error':>7}  {'mean S2':>7}  {'S3':>6}  {'gap closed':>10}")
    for threshold in THRESHOLDS:
        scored = scores_at(pool, neighbours, threshold)
        metrics = variant_metrics(scored)
        print(f"{threshold:>9}  {metrics['p_mae']:>7.5f}  {scored['s2'].mean():>7.3f}  "
              f"{metrics['s3']:>6.4f}  {metrics['s3_gap_closed']:>10.4f}")


if __name__ == "__main__":
    main()
