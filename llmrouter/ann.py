"""Approximate cosine neighbours for large pools (config `knn.index: approximate`).

The exact search costs N^2 products; a pool of a million instances needs an index. This one is
an inverted file built for the method's own query pattern, where every query leaves its own
dataset out and keeps at most K neighbours per other dataset:

- Cells never mix datasets: each dataset is clustered on its own (spherical k-means, faiss,
  about `cell_size` rows per cell). Excluding the query's dataset then drops whole cells, so
  its own subject (usually the nearest region) never crowds the probes out.
- Queries are searched a cell at a time: the queries that share a cell (for a benchmark task,
  its own pool cell) take a shortlist of the cells whose centroids are nearest that cell's
  centroid, each query keeps its `n_probe` nearest of the shortlist, and the whole group is
  scored against the union of its probed cells in one float32 matrix product (BLAS-3, not one
  scan per query). The capped selection is `knn`'s exact one, restricted to those candidates.

Lists are approximate only in which rows they see: a true neighbour is missed when its cell is
not probed. `recall` measures how often against the exact search (benchmarks/bench_scale.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

import numpy as np

from llmrouter import knn
from llmrouter.knn import Neighbours


def _faiss() -> ModuleType:
    """The faiss module (k-means of the cells), quiet about the CPU builds it skips."""
    import logging

    logging.getLogger("faiss.loader").setLevel(logging.WARNING)  # one line per missing CPU build
    try:
        import faiss
    except ImportError as error:  # pragma: no cover - environment problem
        raise ImportError("knn.index: approximate needs the PyPI package faiss-cpu") from error
    return faiss


def assign_cells(pool: np.ndarray, pool_dataset: np.ndarray, cell_size: int = 128,
                 seed: int = 0, threads: int = 1) -> np.ndarray:
    """(n_pool,) int32 cell of every pool row: each dataset split by spherical k-means into
    about len(dataset) / cell_size cells, numbered dataset by dataset in code order.

    pool: (n_pool, dim) unit-norm float32; pool_dataset: (n_pool,) codes, grouped ascending.
    k-means trains on at most 64 rows per cell (seeded), so building stays linear in the pool.
    """
    if cell_size < 1:
        raise ValueError(f"cell_size must be at least 1, got {cell_size}")
    if not np.all(np.diff(pool_dataset) >= 0):
        raise ValueError("pool rows must be grouped by dataset in ascending code order")
    faiss = _faiss()
    faiss.omp_set_num_threads(max(1, threads))
    pool = np.ascontiguousarray(pool, dtype=np.float32)
    cells = np.empty(len(pool), dtype=np.int32)
    codes = np.unique(pool_dataset)
    starts = np.searchsorted(pool_dataset, codes, side="left")
    ends = np.searchsorted(pool_dataset, codes, side="right")
    offset = 0
    for start, end in zip(starts.tolist(), ends.tolist()):
        rows = pool[start:end]
        n_cells = max(1, int(round(len(rows) / cell_size)))
        if n_cells > 1:
            kmeans = faiss.Kmeans(rows.shape[1], n_cells, niter=10, seed=seed, spherical=True,
                                  max_points_per_centroid=64, verbose=False)
            kmeans.train(rows)
            _, nearest = kmeans.index.search(rows, 1)
            # Empty clusters leave gaps: renumber the used cells densely.
            _, local = np.unique(nearest[:, 0], return_inverse=True)
        else:
            local = np.zeros(len(rows), dtype=np.int64)
        cells[start:end] = offset + local
        offset += int(local.max()) + 1
    return cells


@dataclass(frozen=True)
class CellIndex:
    """The pool arranged by cell.

    order: (n_pool,) pool rows sorted by cell; vectors: (n_pool, dim) the pool's vectors in
    that order; starts / ends: (n_cells,) each cell's slice of `order`; centroids: (n_cells, dim)
    unit-norm mean of each cell; cell_dataset: (n_cells,) dataset code of each cell;
    pool_dataset: (n_pool,) dataset code of each pool row (pool order).
    """

    order: np.ndarray
    vectors: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    centroids: np.ndarray
    cell_dataset: np.ndarray
    pool_dataset: np.ndarray

    @property
    def n_cells(self) -> int:
        """Number of cells of the index."""
        return len(self.starts)


def make_index(pool: np.ndarray, pool_dataset: np.ndarray, cells: np.ndarray) -> CellIndex:
    """The searchable index from the pool's vectors and its `assign_cells` result."""
    cells = np.asarray(cells)
    if len(cells) != len(pool):
        raise ValueError(f"the index has {len(cells)} rows, the pool {len(pool)}")
    order = np.argsort(cells, kind="stable")
    sorted_cells = cells[order]
    n_cells = int(sorted_cells[-1]) + 1 if len(cells) else 0
    starts = np.searchsorted(sorted_cells, np.arange(n_cells), side="left")
    ends = np.searchsorted(sorted_cells, np.arange(n_cells), side="right")
    if np.any(ends <= starts):
        raise ValueError("the index has empty cells: it was built for another pool")
    vectors = np.ascontiguousarray(np.asarray(pool, dtype=np.float32)[order])
    centroids = knn.normalize(np.add.reduceat(vectors, starts, axis=0))
    cell_dataset = np.asarray(pool_dataset)[order][starts]
    mixed = np.asarray(pool_dataset)[order] != np.repeat(cell_dataset, ends - starts)
    if mixed.any():
        raise ValueError("the index has cells spanning two datasets: it was built for another "
                         "pool")
    return CellIndex(order, vectors, starts, ends, centroids, cell_dataset.astype(np.int32),
                     np.asarray(pool_dataset))


def _group_lists(index: CellIndex, queries: np.ndarray, group_centroid: np.ndarray,
                 allowed: np.ndarray, k: int, n_probe: int,
                 shortlist: int) -> tuple[np.ndarray, np.ndarray]:
    """Capped lists (pool rows, distances) of one group of similar queries."""
    width = 2 * k
    candidates = np.flatnonzero(allowed)
    if len(candidates) > shortlist:
        near = index.centroids[candidates] @ group_centroid
        candidates = candidates[np.argpartition(-near, shortlist - 1)[:shortlist]]
    if len(candidates) > n_probe:
        to_query = queries @ index.centroids[candidates].T
        probed = np.argpartition(-to_query, n_probe - 1, axis=1)[:, :n_probe]
        candidates = np.unique(candidates[probed])
    else:
        candidates = np.sort(candidates)
    # Cells are numbered dataset by dataset, so sorted cells keep each dataset contiguous.
    sizes = index.ends[candidates] - index.starts[candidates]
    rows = np.concatenate([index.order[s:e] for s, e in
                           zip(index.starts[candidates], index.ends[candidates])])
    block = np.concatenate([index.vectors[s:e] for s, e in
                            zip(index.starts[candidates], index.ends[candidates])])
    codes, first = np.unique(index.cell_dataset[candidates], return_index=True)
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    starts = bounds[first]
    ends = np.append(bounds[first[1:]], bounds[-1])
    sim = block @ queries.T
    found = knn._capped_lists(sim, starts, ends, codes, k, width,
                              max_survivors=64 * width * len(queries))
    if found is None:
        found = knn._per_dataset_lists(sim, starts, ends, k, width)
    cols, dist = found
    return np.where(cols >= 0, rows[np.maximum(cols, 0)], -1), dist


def search(
    index: CellIndex,
    queries: np.ndarray,
    k: int,
    exclude_dataset: int | None = None,
    n_probe: int = 32,
    shortlist: int | None = None,
    query_cells: np.ndarray | None = None,
) -> Neighbours:
    """Approximate neighbour lists of `queries` (n_q, dim), unit-norm: the 2k nearest of the
    probed cells with at most k per dataset, `exclude_dataset` left out (as `knn.search`).

    n_probe: cells each query probes (more: slower, higher recall); shortlist: cells ranked
    for each query group (default 8 n_probe); query_cells: the cell of each query when the
    queries are pool rows (a benchmark task), else each query joins its nearest cell's group.
    A group whose lists come out short (too few rows in its probed cells) is searched again
    with four times the probes, up to every cell, so lists are full whenever the pool allows.
    """
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    n_q, width = len(queries), 2 * k
    if query_cells is None:
        query_cells = np.empty(n_q, dtype=np.int64)
        for q0 in range(0, n_q, 4096):  # bounded memory: (4096, n_cells) at a time
            block = queries[q0 : q0 + 4096] @ index.centroids.T
            query_cells[q0 : q0 + 4096] = np.argmax(block, axis=1)
    query_cells = np.asarray(query_cells)
    allowed = index.cell_dataset != exclude_dataset if exclude_dataset is not None else (
        np.ones(index.n_cells, dtype=bool))
    out_index = np.full((n_q, width), -1, dtype=np.int64)
    out_dist = np.full((n_q, width), np.inf, dtype=np.float32)
    by_cell = np.argsort(query_cells, kind="stable")
    group_cells, group_starts = np.unique(query_cells[by_cell], return_index=True)
    group_ends = np.append(group_starts[1:], n_q)
    for cell, g0, g1 in zip(group_cells, group_starts, group_ends):
        members = by_cell[g0:g1]
        probes, ranked = n_probe, shortlist or 8 * n_probe
        while True:
            rows, dist = _group_lists(index, queries[members], index.centroids[cell], allowed,
                                      k, probes, max(ranked, probes))
            if np.all(rows[:, -1] >= 0) or probes >= index.n_cells:
                break
            probes, ranked = 4 * probes, 4 * ranked
        out_index[members], out_dist[members] = rows, dist
    out_dataset = np.where(out_index >= 0, index.pool_dataset[np.maximum(out_index, 0)], -1)
    return Neighbours(out_index, out_dataset.astype(np.int32), out_dist)


def recall(approximate: Neighbours, exact: Neighbours, depth: int | None = None) -> float:
    """Share of the exact lists' first `depth` rows (all by default) that the approximate
    lists also hold, over every query."""
    depth = depth or exact.index.shape[1]
    want = exact.index[:, :depth]
    got = approximate.index
    hits = (want[:, :, None] == got[:, None, :]).any(axis=2) & (want >= 0)
    return float(hits.sum() / max(1, (want >= 0).sum()))
