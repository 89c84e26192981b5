"""Exact cosine nearest neighbours and the kNN correctness predictor g_m(x).

One neighbour search serves every model and every training pool. For each query we keep the
K nearest instances inside each benchmark dataset, then the L = 2K nearest of those candidates
(own dataset excluded). Any pool that leaves out one more dataset t still finds its exact K
nearest in that list: at most K candidates come from t, and fewer than K from the rest can
precede a true neighbour. So reference mode and strict mode share one search.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Neighbours:
    """Sorted neighbour lists of a set of queries.

    index: (n_queries, L) int64 pool rows; dataset: (n_queries, L) int32 dataset codes;
    distance: (n_queries, L) float32 cosine distances (1 - cosine similarity), ascending.
    Rows may hold -1 / inf padding when the pool is smaller than L.
    """

    index: np.ndarray
    dataset: np.ndarray
    distance: np.ndarray


def normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm, float32 (zero rows stay zero)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, np.float32(1e-12))


def _smallest(dist: np.ndarray, k: int) -> np.ndarray:
    """Column positions of the k smallest entries per row, ascending (partial selection)."""
    if dist.shape[1] > k:
        part = np.argpartition(dist, k - 1, axis=1)[:, :k]
    else:
        part = np.broadcast_to(np.arange(dist.shape[1]), dist.shape).copy()
    order = np.argsort(np.take_along_axis(dist, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def search(
    queries: np.ndarray,
    pool: np.ndarray,
    pool_dataset: np.ndarray,
    k: int,
    exclude_dataset: int | None = None,
    block_size: int = 2048,
) -> Neighbours:
    """Neighbour lists of `queries` (n_q, dim) against `pool` (n_pool, dim), both unit-norm.

    pool_dataset: (n_pool,) int32 dataset code of each pool row, contiguous per dataset.
    k: neighbours kept per dataset (K above); lists are 2K long.
    exclude_dataset: code of a dataset left out of every list (the query's own dataset).
    Memory is bounded by block_size x (largest dataset), not by n_q x n_pool.
    """
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    pool = np.ascontiguousarray(pool, dtype=np.float32)
    codes = np.unique(pool_dataset)
    starts = np.searchsorted(pool_dataset, codes, side="left")
    ends = np.searchsorted(pool_dataset, codes, side="right")
    if not np.all(np.diff(pool_dataset) >= 0):
        raise ValueError("pool rows must be grouped by dataset in ascending code order")
    keep = [(c, s, e) for c, s, e in zip(codes, starts, ends) if c != exclude_dataset]
    n_q, width = len(queries), 2 * k
    out_index = np.full((n_q, width), -1, dtype=np.int64)
    out_dist = np.full((n_q, width), np.inf, dtype=np.float32)
    for q0 in range(0, n_q, block_size):
        block = queries[q0 : q0 + block_size]
        cand_index = np.full((len(block), len(keep) * k), -1, dtype=np.int64)
        cand_dist = np.full((len(block), len(keep) * k), np.inf, dtype=np.float32)
        for j, (_, start, end) in enumerate(keep):
            dist = 1.0 - block @ pool[start:end].T
            top = _smallest(dist, min(k, end - start))
            cand_index[:, j * k : j * k + top.shape[1]] = top + start
            cand_dist[:, j * k : j * k + top.shape[1]] = np.take_along_axis(dist, top, axis=1)
        best = _smallest(cand_dist, min(width, cand_dist.shape[1]))
        out_index[q0 : q0 + len(block), : best.shape[1]] = np.take_along_axis(cand_index, best, 1)
        out_dist[q0 : q0 + len(block), : best.shape[1]] = np.take_along_axis(cand_dist, best, 1)
    out_dataset = np.where(out_index >= 0, pool_dataset[np.maximum(out_index, 0)], -1)
    return Neighbours(out_index, out_dataset.astype(np.int32), out_dist)


def first_allowed(neighbours: Neighbours, k: int, exclude: tuple[int, ...] = ()) -> np.ndarray:
    """(n_queries, k) positions into the lists: the k nearest whose dataset is not excluded.

    Exact for one excluded dataset beyond the query's own (see module docstring).
    Raises ValueError if a list has fewer than k allowed entries.
    """
    allowed = neighbours.index >= 0
    for code in exclude:
        allowed &= neighbours.dataset != code
    rank = np.cumsum(allowed, axis=1)
    if np.any(rank[:, -1] < k):
        raise ValueError(f"fewer than {k} neighbours left in the pool after exclusion")
    chosen = allowed & (rank <= k)
    return np.nonzero(chosen)[1].reshape(len(allowed), k)


def predict_correctness(rows: np.ndarray, correct: np.ndarray) -> np.ndarray:
    """kNN correctness predictor g_m(x) = mean correctness of m on the k nearest pool rows.

    rows: (n, k) pool row indices; correct: (n_pool, n_models) uint8.
    Returns (n, n_models) float32. Sums one neighbour at a time so memory stays (n, n_models).
    """
    total = np.zeros((rows.shape[0], correct.shape[1]), dtype=np.float32)
    for j in range(rows.shape[1]):
        total += correct[rows[:, j]]
    return total / np.float32(rows.shape[1])


def knn_descriptor(distances: np.ndarray) -> float:
    """The paper's task descriptor u(d): mean over points of the mean distance to their
    nearest pool inputs. distances: (n, n_neighbours); clipped at 1e-7 as the reference does.
    """
    return float(np.maximum(distances, 1e-7).mean())
