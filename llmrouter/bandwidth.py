"""Choosing the smoother's bandwidth by leave-one-task-out error on the benchmark pairs.

Given the pairs (descriptor of d, acc(d, m)) a task t would be scored with (t itself never among
them), each pair d is predicted from the others, p_-d(d, m) = sum_{d' != d} w_d' acc(d', m),
and the bandwidth with the smallest mean |p_-d(d, m) - acc(d, m)| over d and m wins.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from llmrouter.routing import Pairs, task_pairs
from llmrouter.smoother import agreement

# Candidate bandwidths, in descriptor units (cosine distance for both `knn` and `ot`):
# from much narrower than the typical gap between tasks to wider than their whole spread.
DEFAULT_GRID = tuple(float(b) for b in np.geomspace(0.002, 1.0, 46))


def pair_distances_knn(u: np.ndarray) -> np.ndarray:
    """(n, n) |u_i - u_j| between the pairs' scalar kNN descriptors u (n,)."""
    u = np.asarray(u, dtype=np.float64)
    return np.abs(u[:, None] - u[None, :])


def loo_predictions(pair_distances: np.ndarray, acc: np.ndarray, bandwidth: float) -> np.ndarray:
    """(n, n_models): each pair's acc predicted by the kernel smoother over the other pairs.

    pair_distances: (n, n) symmetric descriptor distances; acc: (n, n_models).
    Computed in log space, so far-apart pairs still get finite weights (all mass on the nearest).
    """
    if bandwidth <= 0:
        raise ValueError(f"bandwidth must be positive, got {bandwidth}")
    n = len(acc)
    if n < 2:
        raise ValueError("leave-one-out needs at least two pairs")
    log_w = -(np.asarray(pair_distances, dtype=np.float64) ** 2) / (2.0 * bandwidth**2)
    np.fill_diagonal(log_w, -np.inf)
    w = np.exp(log_w - log_w.max(axis=1, keepdims=True))
    w /= w.sum(axis=1, keepdims=True)
    return w @ np.asarray(acc, dtype=np.float64)


def loo_error(pair_distances: np.ndarray, acc: np.ndarray, bandwidth: float) -> float:
    """Mean over pairs and models of |leave-one-out prediction - acc|; NaN for a single pair,
    which has no other pair to be predicted from (a benchmark of two tasks)."""
    if len(acc) < 2:
        return float("nan")
    return float(np.abs(loo_predictions(pair_distances, acc, bandwidth) - acc).mean())


def select_bandwidth(
    pair_distances: np.ndarray, acc: np.ndarray, grid: tuple[float, ...] = DEFAULT_GRID
) -> tuple[float, float]:
    """(bandwidth, its leave-one-out error): the grid value with the smallest error.

    Ties (flat error, e.g. identical accuracies) go to the widest bandwidth, the smoothest fit.
    A single pair is the smoother's whole answer at every bandwidth: the widest, error NaN.
    """
    if not grid:
        raise ValueError("empty bandwidth grid")
    if len(acc) < 2:
        return float(max(grid)), float("nan")
    return best_of_grid(grid, [loo_error(pair_distances, acc, b) for b in grid])


def best_of_grid(grid: tuple[float, ...], errors: list[float]) -> tuple[float, float]:
    """(bandwidth, error) with the smallest error; ties (within 1e-12: a flat error, e.g.
    identical accuracies) go to the widest bandwidth, the smoothest fit."""
    errors_array = np.asarray(errors, dtype=np.float64)
    best = np.flatnonzero(errors_array <= errors_array.min() + 1e-12)
    widest = max(best, key=lambda i: grid[i])
    return float(grid[widest]), float(errors_array[widest])


def pair_distances(pairs: Pairs, descriptor: str,
                   ot_matrix: dict[str, dict[str, float]] | None = None) -> np.ndarray:
    """(n_pairs, n_pairs) descriptor distances between the pairs' tasks.

    ot_matrix: task -> {dataset -> OT distance}; symmetrised, since each row is its own job.
    """
    if descriptor == "knn":
        return pair_distances_knn(pairs.u)
    if descriptor == "ot":
        if ot_matrix is None:
            raise ValueError("descriptor 'ot' needs the OT distance matrix")
        names = pairs.datasets
        matrix = np.array([[ot_matrix[a][b] for b in names] for a in names])
        return (matrix + matrix.T) / 2.0
    raise ValueError(f"unknown descriptor {descriptor!r}; known: knn, ot (agreement has no "
                     "bandwidth)")


def agreement_error(pairs: Pairs) -> float:
    """Mean over pairs and models of |S2 S1 + (1 - S2)(1 - S1) - acc|: the error of the
    `agreement` descriptor, leave-one-task-out because each pair's task was out of its pool.
    It fits nothing, so no pair needs leaving out of a fit."""
    if pairs.s1 is None or pairs.s2 is None:
        raise ValueError("the smoother pairs have no s1/s2 columns: refit the smoother "
                         "(results/smoother/pairs.parquet) to use the agreement descriptor")
    return float(np.abs(agreement(pairs.s1, pairs.s2) - pairs.acc).mean())


def fit_bandwidths(
    pairs_table: pl.DataFrame,
    models: list[str],
    datasets: list[str],
    mode: str,
    descriptor: str,
    bandwidth: float | str | None,
    grid: tuple[float, ...] = DEFAULT_GRID,
    ot_matrix: dict[str, dict[str, float]] | None = None,
) -> pl.DataFrame:
    """The bandwidth each task is scored with, and its leave-one-task-out error.

    One row per benchmark task (on the pairs that task is scored with, so never tuned on it)
    and one with task null (all pairs: for a user's new task). bandwidth "auto": chosen from
    `grid`; a number: used as given, its error reported. Descriptor "agreement" has no
    bandwidth: NaN, with the estimator's error on the pairs (the table keeps one shape).
    Columns: task, descriptor, bandwidth, loo_error, n_pairs, auto.
    """
    rows = []
    for task in [*datasets, None]:
        pairs = task_pairs(pairs_table, models, task, datasets, mode)
        if descriptor == "agreement":
            chosen, error = float("nan"), agreement_error(pairs)
        elif bandwidth == "auto":
            chosen, error = select_bandwidth(pair_distances(pairs, descriptor, ot_matrix),
                                             pairs.acc, grid)
        else:
            chosen = float(bandwidth)
            error = loo_error(pair_distances(pairs, descriptor, ot_matrix), pairs.acc, chosen)
        rows.append({"task": task, "descriptor": descriptor, "bandwidth": chosen,
                     "loo_error": error, "n_pairs": len(pairs.datasets),
                     "auto": bandwidth == "auto" and descriptor != "agreement"})
    return pl.DataFrame(rows, schema={"task": pl.String, "descriptor": pl.String,
                                      "bandwidth": pl.Float64, "loo_error": pl.Float64,
                                      "n_pairs": pl.Int64, "auto": pl.Boolean})
