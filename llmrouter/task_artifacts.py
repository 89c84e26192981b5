"""A task's scores read from the workflow's artifact files: what score_task and
score_new_task share."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from llmrouter.artifacts import read_table
from llmrouter.knn import Neighbours
from llmrouter.pool import Pool
from llmrouter.routing import RoutingParams, task_scores
from llmrouter.store import read_neighbours, read_ot_row, read_pool


@dataclass(frozen=True)
class ScoredTask:
    """`task_scores`'s table with the artifacts it came from (a new task's ranking needs them)."""

    scores: pl.DataFrame
    pool: Pool
    neighbours: Neighbours
    pairs_table: pl.DataFrame


def score_from_artifacts(
    task: str,
    params: RoutingParams,
    *,
    pool: str | Path,
    models: str | Path,
    neighbours: str | Path,
    pairs: str | Path,
    bandwidth: str | Path,
    task_distances: str | Path | None = None,
) -> ScoredTask:
    """Score every model on `task` from results/pool/{correctness,models}.parquet, the task's
    neighbours, results/smoother/{pairs,bandwidth}.parquet and, for the `ot` descriptor only,
    the task's row of the distance matrix (results/distances/{task}.parquet); without it the
    `ot` descriptor fails in routing.smoother_p."""
    benchmark = read_pool(pool, models)
    _, lists = read_neighbours(neighbours)
    pairs_table = pl.from_arrow(read_table(pairs))
    fitted = pl.from_arrow(read_table(bandwidth))
    ot_row = (read_ot_row(task_distances, task)
              if params.descriptor == "ot" and task_distances else None)
    frame = task_scores(task, lists, benchmark, pairs_table, params, fitted, ot_row)
    return ScoredTask(frame, benchmark, lists, pairs_table)
