"""Score every benchmark model on one task: S1, S2, p, S3, and the picks."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821

import polars as pl

from llmrouter.artifacts import read_table, write_table
from llmrouter.logs import run_logged
from llmrouter.routing import (RoutingParams, pairs_from_frame, score_task, smoother_p,
                               task_predictions)
from llmrouter.store import read_neighbours, read_ot_row, read_pool


def main() -> None:
    task = snakemake.wildcards.task  # noqa: F821
    params = RoutingParams(**snakemake.params.routing)  # noqa: F821
    pool = read_pool(snakemake.input.pool, snakemake.input.models)  # noqa: F821
    _, neighbours = read_neighbours(snakemake.input.neighbours)  # noqa: F821
    pairs_table = pl.from_arrow(read_table(snakemake.input.pairs))  # noqa: F821
    g, u = task_predictions(neighbours, pool, params)
    accuracy = pool.task_accuracy()
    if task in pool.datasets:
        code = pool.datasets.index(task)
        others = [i for i in range(len(pool.datasets)) if i != code]
        strict = params.mode == "strict"
        pairs = pairs_from_frame(pairs_table, pool.models, task if strict else None, drop=task)
        bma_scores = accuracy[others].mean(axis=0) if strict else accuracy.mean(axis=0)
        tiebreak = pool.correct[pool.dataset_of != code].mean(axis=0)
        correct = pool.correct[pool.rows(task)]
    else:
        pairs = pairs_from_frame(pairs_table, pool.models, None)
        bma_scores = accuracy.mean(axis=0)
        tiebreak = pool.correct.mean(axis=0)
        correct = None
    p = None
    if params.descriptor == "agreement":
        # No smoother: p from the task's own S1 and S2 (results/smoother/bandwidth.parquet
        # only reports this estimator's error on the benchmark pairs).
        p = smoother_p(u, pairs, params.descriptor, float("nan"), g=g,
                       threshold=params.threshold)
    elif params.descriptor != "knn" or params.bandwidth == "auto":
        fitted = pl.from_arrow(read_table(snakemake.input.bandwidth))  # noqa: F821
        fitted = fitted.filter(pl.col("task") == task if task in pool.datasets
                               else pl.col("task").is_null())
        ot_row = None
        if params.descriptor == "ot":
            ot_row = read_ot_row(snakemake.input.distances, task)  # noqa: F821
        p = smoother_p(u, pairs, params.descriptor, fitted["bandwidth"].item(), ot_row)
    frame = score_task(task, g, u, pairs, bma_scores, tiebreak, pool.models, params, correct, p)
    write_table(frame, snakemake.output[0])  # noqa: F821


run_logged(snakemake.log[0], main)  # noqa: F821
