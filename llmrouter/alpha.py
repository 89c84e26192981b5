"""A few labelled examples of the new task (the paper's alpha): they join the training pool.

min(alpha * n, 50) points of task t, drawn with a seed, are labelled: they become training
inputs of the kNN predictor and of the descriptor u(t), and are removed from the scored set.
The precomputed neighbour lists exclude t's own dataset, so the distances of the remaining
points to the labelled ones are computed here and merged into the lists.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from llmrouter import knn
from llmrouter.pool import Pool
from llmrouter.rng import task_rng

MAX_LABELLED = 50


def n_labelled(n: int, alpha: float, cap: int = MAX_LABELLED) -> int:
    """min(floor(alpha * n), cap): how many of a task's n points are labelled."""
    if not 0 <= alpha < 1:
        raise ValueError(f"alpha must be in [0, 1), got {alpha}")
    # With alpha as written in the config (its shortest repr), not its binary value:
    # 0.29 * 100 is 28.999999999999996 in floats.
    return min(math.floor(Fraction(str(float(alpha))) * n), cap)


def labelled_split(n: int, alpha: float, seed: int, task: str) -> tuple[np.ndarray, np.ndarray]:
    """(labelled, rest): sorted positions 0..n-1 of the task's labelled and scored points.

    The draw depends on (seed, task name) only, so repeats over seeds differ and a rerun agrees.
    """
    size = n_labelled(n, alpha)
    rng = task_rng(seed, task)
    labelled = np.sort(rng.choice(n, size=size, replace=False)) if size else np.array([], int)
    rest = np.setdiff1d(np.arange(n), labelled)
    return labelled.astype(np.int64), rest.astype(np.int64)


def merge_labelled(
    rows: np.ndarray,
    dists: np.ndarray,
    labelled_rows: np.ndarray,
    labelled_dists: np.ndarray,
    width: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Merge each query's neighbour list with its distances to the labelled points.

    rows, dists: (n, L) pool rows and distances, ascending; labelled_rows: (n_lab,) pool rows;
    labelled_dists: (n, n_lab). Returns the `width` nearest of both, ascending: (n, width) rows
    and distances. Equal distances go by pool row, as in knn.search: a text in two datasets
    is as near as its copy.
    """
    all_rows = np.concatenate([rows, np.broadcast_to(labelled_rows, labelled_dists.shape)], 1)
    all_dists = np.concatenate([dists, labelled_dists.astype(dists.dtype)], axis=1)
    order = np.lexsort((all_rows, all_dists), axis=1)[:, :width]
    return np.take_along_axis(all_rows, order, 1), np.take_along_axis(all_dists, order, 1)


def labelled_predictions(
    neighbours: knn.Neighbours,
    pool: Pool,
    task: str,
    vectors: np.ndarray,
    labelled: np.ndarray,
    rest: np.ndarray,
    k: int,
    descriptor_k: int,
    exclude: tuple[int, ...] = (),
) -> tuple[np.ndarray, float]:
    """g (n_rest, n_models) and u(t) of the task's scored points, its labelled points in the pool.

    neighbours: the task's lists (own dataset excluded), one row per task point in pool order;
    vectors: (n, dim) the task's unit-norm embeddings in the same order;
    exclude: further datasets out of the pool (strict nesting needs none for the task itself).
    With no labelled points this is exactly routing.task_predictions.
    """
    width = max(k, descriptor_k)
    positions = knn.first_allowed(neighbours, width, exclude)
    rows = np.take_along_axis(neighbours.index, positions, axis=1)[rest]
    dists = np.take_along_axis(neighbours.distance, positions, axis=1)[rest]
    if len(labelled):
        task_rows = pool.rows(task)
        # Same arithmetic as knn.search, so distances are comparable with the lists'.
        extra = 1.0 - vectors[rest].astype(np.float32) @ vectors[labelled].astype(np.float32).T
        rows, dists = merge_labelled(rows, dists, task_rows[labelled], extra, width)
    g = knn.predict_correctness(rows[:, :k], pool.correct)
    return g, knn.knn_descriptor(dists[:, :descriptor_k])
