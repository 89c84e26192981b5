"""Approximate cosine neighbours for large pools (config `knn.index: approximate`).

An inverted-file index (faiss IndexIVFFlat, inner product on unit vectors) replaces the exact
blockwise search when the pool is too large for N x N products (a million instances). It
returns the same `knn.Neighbours` lists as `knn.search`: the 2K nearest with at most K per
dataset, the query's own dataset left out (by an id-range selector inside the index, so the
own dataset never crowds the candidates out). Lists are approximate: the nearest rows can be
missed when they lie in a cell the query does not probe; `recall` measures how often against
the exact search (benchmarks/bench_scale.py quotes it).
"""

from __future__ import annotations

import numpy as np

from llmrouter.knn import Neighbours


def _faiss():
    import logging

    logging.getLogger("faiss.loader").setLevel(logging.WARNING)  # one line per missing CPU build
    try:
        import faiss
    except ImportError as error:  # pragma: no cover - environment problem
        raise ImportError("knn.index: approximate needs the PyPI package faiss-cpu") from error
    return faiss


def default_lists(n_pool: int) -> int:
    """Number of index cells: about 2 sqrt(n), at least 1, at most n / 39 (faiss wants ~39
    training points per cell)."""
    return int(max(1, min(2 * np.sqrt(n_pool), n_pool // 39)))


def build_index(pool: np.ndarray, n_lists: int | None = None, train_size: int = 65536,
                seed: int = 0, threads: int = 1):
    """A trained IVF-Flat inner-product index holding every row of `pool` (n_pool, dim),
    unit-norm float32; ids are pool row numbers. k-means trains on a seeded sample of
    train_size rows, so the index is the same on every run with the same data."""
    faiss = _faiss()
    faiss.omp_set_num_threads(max(1, threads))
    pool = np.ascontiguousarray(pool, dtype=np.float32)
    n_lists = n_lists or default_lists(len(pool))
    quantizer = faiss.IndexFlatIP(pool.shape[1])
    index = faiss.IndexIVFFlat(quantizer, pool.shape[1], n_lists, faiss.METRIC_INNER_PRODUCT)
    index.cp.seed = seed
    rng = np.random.default_rng(seed)
    sample = pool[np.sort(rng.choice(len(pool), min(train_size, len(pool)), replace=False))]
    index.train(sample)
    index.add(pool)
    return index


def search(
    index,
    queries: np.ndarray,
    pool_dataset: np.ndarray,
    k: int,
    exclude_dataset: int | None = None,
    n_probe: int = 16,
    candidates: int | None = None,
    threads: int = 1,
) -> Neighbours:
    """Approximate neighbour lists of `queries` (n_q, dim), unit-norm, in `index`.

    pool_dataset: (n_pool,) int32 dataset code of each index id, contiguous per dataset.
    k: neighbours kept per dataset; lists are 2k long. n_probe: cells visited per query
    (more: slower, higher recall). candidates: nearest ids fetched before the per-dataset cap
    is applied (default 4k). Rows may hold -1 / inf padding when too few candidates survive.
    """
    faiss = _faiss()
    faiss.omp_set_num_threads(max(1, threads))
    width = 2 * k
    fetch = candidates or 4 * k
    params = faiss.SearchParametersIVF(nprobe=n_probe)
    if exclude_dataset is not None:
        start = int(np.searchsorted(pool_dataset, exclude_dataset, side="left"))
        end = int(np.searchsorted(pool_dataset, exclude_dataset, side="right"))
        # the selector must stay referenced while the search runs
        own = faiss.IDSelectorRange(start, end)
        params.sel = selector = faiss.IDSelectorNot(own)
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    sim, ids = index.search(queries, fetch, params=params)
    found = cap_lists(ids, np.float32(1.0) - sim, pool_dataset, k, width)
    # Rows whose candidates crowd into few datasets fill fewer than 2k places (and the pools
    # that leave out one more dataset would lack k): search those again, wider and deeper.
    # More candidates fix crowding; more cells only help when the probed cells ran out of ids.
    short = np.flatnonzero(found.index[:, -1] < 0)
    while len(short) and (fetch < index.ntotal or params.nprobe < index.nlist):
        if np.any(ids[:, -1] < 0) or fetch >= index.ntotal:
            params.nprobe = min(4 * params.nprobe, index.nlist)
        fetch = min(4 * fetch, index.ntotal)
        sim, ids = index.search(queries[short], fetch, params=params)
        again = cap_lists(ids, np.float32(1.0) - sim, pool_dataset, k, width)
        found.index[short], found.dataset[short] = again.index, again.dataset
        found.distance[short] = again.distance
        short = short[again.index[:, -1] < 0]
    if exclude_dataset is not None:
        del selector, own
    return found


def cap_lists(ids: np.ndarray, dist: np.ndarray, pool_dataset: np.ndarray, k: int,
              width: int) -> Neighbours:
    """Keep, per row of (n_q, m) candidate ids sorted by distance (-1: none), the first
    `width` with at most k per dataset."""
    n_q, m = ids.shape
    valid = ids >= 0
    code = np.where(valid, pool_dataset[np.maximum(ids, 0)], -1).astype(np.int64)
    # occurrence of each candidate's dataset so far in its row, by a stable sort on the code
    order = np.argsort(code, axis=1, kind="stable")
    sorted_code = np.take_along_axis(code, order, axis=1)
    new_group = np.ones_like(sorted_code, dtype=bool)
    new_group[:, 1:] = sorted_code[:, 1:] != sorted_code[:, :-1]
    position = np.broadcast_to(np.arange(m), (n_q, m))
    group_start = np.maximum.accumulate(np.where(new_group, position, 0), axis=1)
    occurrence = np.empty_like(order)
    np.put_along_axis(occurrence, order, position - group_start, axis=1)
    keep = valid & (occurrence < k)
    rank = np.cumsum(keep, axis=1) - 1
    keep &= rank < width
    rows = np.broadcast_to(np.arange(n_q)[:, None], (n_q, m))
    out_index = np.full((n_q, width), -1, dtype=np.int64)
    out_dist = np.full((n_q, width), np.inf, dtype=np.float32)
    out_index[rows[keep], rank[keep]] = ids[keep]
    out_dist[rows[keep], rank[keep]] = dist[keep]
    out_dataset = np.where(out_index >= 0, pool_dataset[np.maximum(out_index, 0)], -1)
    return Neighbours(out_index, out_dataset.astype(np.int32), out_dist)


def recall(approximate: Neighbours, exact: Neighbours, depth: int | None = None) -> float:
    """Share of the exact lists' first `depth` rows (all by default) that the approximate
    lists also hold, over every query."""
    depth = depth or exact.index.shape[1]
    want = exact.index[:, :depth]
    got = approximate.index
    hits = (want[:, :, None] == got[:, None, :]).any(axis=2) & (want >= 0)
    return float(hits.sum() / max(1, (want >= 0).sum()))


def write_index(index, path) -> None:
    """Save an index atomically (temporary file renamed into place)."""
    import os

    from llmrouter.artifacts import atomic_path

    tmp, final = atomic_path(path)
    try:
        _faiss().write_index(index, str(tmp))
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def read_index(path):
    """Load an index written by `write_index`."""
    return _faiss().read_index(str(path))
