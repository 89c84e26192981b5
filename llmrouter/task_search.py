"""One task's neighbour lists in the benchmark pool, exact or approximate (find_neighbours).

A benchmark task's queries are its own pool rows, with its own dataset left out of every list
(leave-one-task-out); a new task's queries are its embeddings, against the whole pool.
"""

from __future__ import annotations

import numpy as np

from llmrouter import ann, knn
from llmrouter.pool import Pool


def task_neighbours(
    task: str,
    pool: Pool,
    vectors: np.ndarray,
    k: int,
    new_task: tuple[np.ndarray, np.ndarray] | None = None,
    cells: np.ndarray | None = None,
    n_probe: int | None = 32,
    block_size: int = 2048,
) -> tuple[np.ndarray, knn.Neighbours]:
    """(query instance ids, their neighbour lists) of `task`.

    vectors: (n_pool, dim) unit-norm embeddings of the pool rows; k: neighbours kept per
    dataset (lists are 2k long); new_task: (instance ids, embeddings) of a task outside the
    pool; cells: the approximate index's cell of every pool row (None: exact search).
    n_probe (cells visited per query) is read by the approximate search only, block_size
    (queries per matrix product) by the exact search only.
    """
    query_rows = None
    if task in pool.datasets:
        query_rows = pool.rows(task)
        ids, queries = pool.instance_ids[query_rows], vectors[query_rows]
        own = pool.datasets.index(task)
    elif new_task is not None:
        ids, queries = new_task[0], knn.normalize(new_task[1])
        own = None
    else:
        raise ValueError(f"task {task!r} is not in the pool and has no embeddings given")
    if cells is None:
        return ids, knn.search(queries, vectors, pool.dataset_of, k, exclude_dataset=own,
                               block_size=block_size)
    index = ann.make_index(vectors, pool.dataset_of, cells)
    return ids, ann.search(index, queries, k, exclude_dataset=own, n_probe=n_probe,
                           query_cells=None if query_rows is None else cells[query_rows])
