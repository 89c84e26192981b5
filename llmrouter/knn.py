"""Exact cosine nearest neighbours and the kNN correctness predictor g_m(x).

One neighbour search serves every model and every training pool. For each query we keep the
K nearest instances inside each benchmark dataset, then the L = 2K nearest of those candidates
(own dataset excluded). Any pool that leaves out one more dataset t still finds its exact K
nearest in that list: at most K candidates come from t, and fewer than K from the rest can
precede a true neighbour. So reference mode and strict mode share one search.

The list is the 2K nearest of the pool with at most K per dataset ("capped"). It is found
without selecting inside every dataset: split each dataset into at most K segments and take
each segment's best similarity. Any 2K of those are 2K distinct rows with at most K per
dataset, so the capped list's last entry is at least as near as the 2K-th best of them: rows
below that bound can never enter the list. Only the rows that reach the bound (about 50 per
query on helm_mmlu, at most about 100) are sorted, and the cap is applied to them. Ties in
distance are ordered by pool row, so the lists never depend on sort stability.
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


def _nearest_then_lowest(index: np.ndarray, dist: np.ndarray, width: int) -> np.ndarray:
    """(n_q, <= width) positions of each row's `width` smallest distances, ties to the lower
    index (padding, -1 / inf, last): the order every path of `search` gives its lists."""
    padded = np.where(index >= 0, index, np.iinfo(np.int64).max)
    return np.lexsort((padded, dist), axis=1)[:, :width]


def _column_chunks(starts: np.ndarray, ends: np.ndarray, chunk_columns: int) -> list[range]:
    """Group consecutive datasets (by position) so each group spans about chunk_columns pool
    rows without a gap (an excluded dataset); a dataset larger than that is a group of its own
    (it is never split)."""
    groups, first, width = [], 0, 0
    for j in range(len(starts)):
        size = int(ends[j] - starts[j])
        if j > first and (width + size > chunk_columns or starts[j] != ends[j - 1]):
            groups.append(range(first, j))
            first, width = j, 0
        width += size
    if len(starts):
        groups.append(range(first, len(starts)))
    return groups


def _segment_best(sim: np.ndarray, starts: np.ndarray, ends: np.ndarray, k: int) -> np.ndarray:
    """(n_segments, n_q) best similarity of each of at most k segments per dataset.

    sim: (n_cols, n_q); dataset j occupies rows [starts[j], ends[j]) and is cut into segments
    of ceil(size / k) rows, so no dataset has more than k segments. The maxima run along
    contiguous memory (one reshape per dataset; numpy's reduceat is several times slower).
    """
    parts = []
    for start, end in zip(starts.tolist(), ends.tolist()):
        size = end - start
        width = -(-size // min(k, size))
        full = size // width * width
        if full:
            parts.append(sim[start : start + full].reshape(full // width, width, -1).max(axis=1))
        if full < size:
            parts.append(sim[start + full : end].max(axis=0, keepdims=True))
    return np.concatenate(parts) if parts else np.zeros((0, sim.shape[1]), dtype=sim.dtype)


def _capped_lists(sim: np.ndarray, starts: np.ndarray, ends: np.ndarray, codes: np.ndarray,
                  k: int, width: int, max_survivors: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Capped lists (at most k per dataset, `width` long) from one block of similarities.

    sim: (n_cols, n_q) float32 similarities of pool columns to queries, C-contiguous (the
    reductions then run along contiguous memory); datasets occupy [starts, ends)
    with codes `codes`. Returns ((n_q, width) column positions, (n_q, width) distances) sorted
    by distance then column, padded with -1 / inf; None when more than max_survivors entries
    reach the bound (degenerate data: the caller selects inside each dataset instead).
    """
    n_q = sim.shape[1]
    seg_best = _segment_best(sim, starts, ends, k)
    n_seg = len(seg_best)
    if n_seg > width:
        bound = np.partition(seg_best, n_seg - width, axis=0)[n_seg - width]
        # a margin of a few float32 steps only admits more rows: never loses a neighbour
        bound = bound - np.float32(4 * np.finfo(np.float32).eps)
    else:
        bound = np.full(n_q, -np.inf, dtype=np.float32)
    flat = np.flatnonzero(sim >= bound)
    if flat.size > max_survivors:
        return None
    cols, rows = np.divmod(flat, n_q)
    dist = np.float32(1.0) - sim.reshape(-1)[flat]
    return cap_candidates(rows, cols, dist, np.repeat(codes, ends - starts), n_q, k, width)


def _order_by_row_then_distance(rows: np.ndarray, cols: np.ndarray,
                                dist: np.ndarray) -> np.ndarray:
    """Permutation sorting candidates by (row, distance, column).

    One quicksort of a packed 64-bit key (row, distance bits, column) where the three fit,
    several times faster than a three-key lexsort; the key is unique, so the order is exact
    and deterministic, and the same as the lexsort's.
    """
    row_bits = max(1, int(rows.max(initial=0)).bit_length())
    col_bits = max(1, int(cols.max(initial=0)).bit_length())
    if row_bits + col_bits + 32 > 64:
        return np.lexsort((cols, dist, rows))
    key = ((rows.astype(np.uint64) << np.uint64(32 + col_bits))
           | (sortable_bits(dist).astype(np.uint64) << np.uint64(col_bits))
           | cols.astype(np.uint64))
    return np.argsort(key)


def sortable_bits(values: np.ndarray) -> np.ndarray:
    """uint32 that sort like the float32 `values` (NaN aside): a near-duplicate's distance
    1 - cos can come out a little below 0, and a negative float's bit pattern sorts after
    every positive one. Flip every bit of a negative, only the sign bit of the others; -0.0
    becomes 0.0 first, as the two are equal."""
    bits = (np.asarray(values, dtype=np.float32) + np.float32(0.0)).view(np.uint32)
    negative = (bits >> np.uint32(31)).astype(bool)
    return bits ^ np.where(negative, np.uint32(0xFFFFFFFF), np.uint32(0x80000000))


def cap_candidates(rows: np.ndarray, cols: np.ndarray, dist: np.ndarray,
                   column_code: np.ndarray, n_q: int, k: int,
                   width: int) -> tuple[np.ndarray, np.ndarray]:
    """Capped lists from candidate entries: per query row, the `width` nearest candidates
    with at most k per dataset, sorted by distance then column.

    rows / cols / dist: (n,) query row, candidate column and distance of each candidate entry
    (any order, each (row, col) once); column_code: dataset code of every column.
    Returns ((n_q, width) columns, (n_q, width) distances), padded with -1 / inf.
    """
    order = _order_by_row_then_distance(rows, cols, dist)
    rows, cols, dist = rows[order], cols[order], dist[order]
    n = len(rows)
    position = np.arange(n)
    if n:
        code = column_code[cols].astype(np.int64)
        # occurrence of each (row, dataset) so far: one more sort, on a unique packed key
        group = rows.astype(np.int64) * (int(code.max()) + 1) + code
        if n < 2**32 and int(group.max()) < 2**31:
            by_dataset = np.argsort((group << 32) | position)
        else:
            by_dataset = np.lexsort((position, group))
        sorted_group = group[by_dataset]
        new_group = np.ones(n, dtype=bool)
        new_group[1:] = sorted_group[1:] != sorted_group[:-1]
        group_start = np.maximum.accumulate(np.where(new_group, position, 0))
        occurrence = np.empty(n, dtype=np.int64)
        occurrence[by_dataset] = position - group_start
        keep = occurrence < k
        rows, cols, dist = rows[keep], cols[keep], dist[keep]
    row_start = np.searchsorted(rows, np.arange(n_q))
    rank = np.arange(len(rows)) - row_start[rows]
    keep = rank < width
    out_cols = np.full((n_q, width), -1, dtype=np.int64)
    out_dist = np.full((n_q, width), np.inf, dtype=np.float32)
    out_cols[rows[keep], rank[keep]] = cols[keep]
    out_dist[rows[keep], rank[keep]] = dist[keep]
    return out_cols, out_dist


def _k_smallest_lowest_first(dist: np.ndarray, k: int) -> np.ndarray:
    """(n_q, k) column positions of each row's k smallest distances, ties at the k-th place
    to the lower columns, in ascending column order.

    A partial selection finds the k-th value; every entry below it is taken, and the lowest
    columns equal to it fill the rest. This is exact on ties like a stable sort, but linear
    in the row length (a stable sort of every dataset was about 2x slower on helm_mmlu).
    """
    if k == 0:
        return np.zeros((len(dist), 0), dtype=np.int64)
    kth = np.partition(dist, k - 1, axis=1)[:, k - 1 : k]
    below = dist < kth
    at_kth = dist == kth
    room = k - below.sum(axis=1, keepdims=True)
    chosen = below | (at_kth & (np.cumsum(at_kth, axis=1) <= room))
    return np.nonzero(chosen)[1].reshape(len(dist), k)


def _per_dataset_lists(sim: np.ndarray, starts: np.ndarray, ends: np.ndarray, k: int,
                       width: int) -> tuple[np.ndarray, np.ndarray]:
    """Same result as `_capped_lists`, ties included, by selecting inside every dataset
    (slower; used when the bound admits too many rows, i.e. on data with many ties)."""
    dist = np.subtract(np.float32(1.0), sim.T)
    n_q = len(dist)
    cand_cols = np.full((n_q, len(starts) * k), -1, dtype=np.int64)
    cand_dist = np.full((n_q, len(starts) * k), np.inf, dtype=np.float32)
    for j, (start, end) in enumerate(zip(starts.tolist(), ends.tolist())):
        part = dist[:, start:end]
        top = _k_smallest_lowest_first(part, min(k, end - start))
        cand_cols[:, j * k : j * k + top.shape[1]] = top + start
        cand_dist[:, j * k : j * k + top.shape[1]] = np.take_along_axis(part, top, 1)
    best = _nearest_then_lowest(cand_cols, cand_dist, width)
    out_cols = np.full((n_q, width), -1, dtype=np.int64)
    out_dist = np.full((n_q, width), np.inf, dtype=np.float32)
    out_cols[:, : best.shape[1]] = np.take_along_axis(cand_cols, best, 1)
    out_dist[:, : best.shape[1]] = np.take_along_axis(cand_dist, best, 1)
    return out_cols, out_dist


def search(
    queries: np.ndarray,
    pool: np.ndarray,
    pool_dataset: np.ndarray,
    k: int,
    exclude_dataset: int | None = None,
    block_size: int = 2048,
    chunk_columns: int = 32768,
) -> Neighbours:
    """Neighbour lists of `queries` (n_q, dim) against `pool` (n_pool, dim), both unit-norm.

    pool_dataset: (n_pool,) int32 dataset code of each pool row, contiguous per dataset.
    k: neighbours kept per dataset (K above); lists are 2K long.
    exclude_dataset: code of a dataset left out of every list (the query's own dataset).
    Similarities come from one float32 matrix product per (query block, group of datasets of
    about chunk_columns rows), so memory is bounded by block_size x max(chunk_columns,
    largest dataset), never n_q x n_pool. Groups never split a dataset, so the capped lists
    of the groups merge into the capped list of the pool.
    """
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    pool = np.ascontiguousarray(pool, dtype=np.float32)
    if not np.all(np.diff(pool_dataset) >= 0):
        raise ValueError("pool rows must be grouped by dataset in ascending code order")
    for name, vectors in (("query", queries), ("pool", pool)):
        finite = np.isfinite(vectors).all(axis=1)
        if not finite.all():
            raise ValueError(f"{name} vector {int(np.argmin(finite))} holds NaN or inf: the "
                             "embeddings are broken")
    codes = np.unique(pool_dataset)
    starts = np.searchsorted(pool_dataset, codes, side="left")
    ends = np.searchsorted(pool_dataset, codes, side="right")
    keep = codes != exclude_dataset
    codes, starts, ends = codes[keep], starts[keep], ends[keep]
    groups = _column_chunks(starts, ends, chunk_columns)
    n_q, width = len(queries), 2 * k
    out_index = np.full((n_q, width), -1, dtype=np.int64)
    out_dist = np.full((n_q, width), np.inf, dtype=np.float32)
    for q0 in range(0, n_q, block_size):
        block = queries[q0 : q0 + block_size]
        cand_index, cand_dist = [], []
        for group in groups:
            lo, hi = int(starts[group[0]]), int(ends[group[-1]])
            sim = pool[lo:hi] @ block.T
            g_starts, g_ends = starts[group] - lo, ends[group] - lo
            found = _capped_lists(sim, g_starts, g_ends, codes[group], k, width,
                                  max_survivors=64 * width * len(block))
            if found is None:
                found = _per_dataset_lists(sim, g_starts, g_ends, k, width)
            cols, dist = found
            cand_index.append(np.where(cols >= 0, cols + lo, -1))
            cand_dist.append(dist)
        cand_index, cand_dist = np.hstack(cand_index), np.hstack(cand_dist)
        if len(groups) > 1:
            best = _nearest_then_lowest(cand_index, cand_dist, width)
            cand_index = np.take_along_axis(cand_index, best, 1)
            cand_dist = np.take_along_axis(cand_dist, best, 1)
        out_index[q0 : q0 + len(block)] = cand_index
        out_dist[q0 : q0 + len(block)] = cand_dist
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
