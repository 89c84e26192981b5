"""The workflow's artifacts as typed objects: read and write pool, embeddings, neighbours."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

from llmrouter.artifacts import (
    InputError,
    column_matrix,
    matrix_column,
    read_table,
    write_table,
)
from llmrouter.knn import Neighbours
from llmrouter.pool import Pool


def write_pool(pool: Pool, correctness_path: str | Path, models_path: str | Path,
               dropped: dict[str, str]) -> None:
    """Pool rows (dataset, instance_id, correct as a uint8 list per row) and the model list
    (model, column, kept, reason)."""
    table = pa.table({
        "dataset": pa.array(np.asarray(pool.datasets)[pool.dataset_of]),
        "instance_id": pa.array(pool.instance_ids),
        "correct": matrix_column(pool.correct),
    })
    write_table(table, correctness_path)
    kept = pl.DataFrame({"model": pool.models, "column": list(range(len(pool.models))),
                         "kept": [True] * len(pool.models), "reason": [""] * len(pool.models)})
    gone = pl.DataFrame({"model": list(dropped), "column": [None] * len(dropped),
                         "kept": [False] * len(dropped), "reason": list(dropped.values())},
                        schema=kept.schema)
    write_table(pl.concat([kept, gone]), models_path)


def read_source_models(models_path: str | Path) -> list[str]:
    """Every model of the source that `write_pool`'s model list names, kept in the pool or
    dropped from it (config keys such as cost.models may name either)."""
    return pl.from_arrow(read_table(models_path, ["model"]))["model"].to_list()


def read_pool(correctness_path: str | Path, models_path: str | Path) -> Pool:
    """Inverse of `write_pool`."""
    table = read_table(correctness_path, ["dataset", "instance_id", "correct"])
    models = pl.from_arrow(read_table(models_path, ["model", "column", "kept"]))
    models = models.filter(pl.col("kept")).sort("column")["model"].to_list()
    names = table.column("dataset").to_numpy(zero_copy_only=False).astype(str)
    datasets = sorted(set(names.tolist()))
    codes = np.searchsorted(np.asarray(datasets), names).astype(np.int32)
    return Pool(
        datasets=datasets,
        dataset_of=codes,
        instance_ids=table.column("instance_id").to_numpy(zero_copy_only=False).astype(str),
        models=models,
        correct=column_matrix(table, "correct").astype(np.uint8),
    )


def write_embeddings(instance_ids: list[str], vectors: np.ndarray, path: str | Path) -> None:
    """instance_id + float32 vector per row."""
    table = pa.table({"instance_id": pa.array(instance_ids, pa.string())})
    write_table(table.append_column("vector", matrix_column(vectors.astype(np.float32))), path)


def read_embeddings(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(instance_ids, (n, dim) float32) of one embeddings file."""
    table = read_table(path, ["instance_id", "vector"])
    ids = table.column("instance_id").to_numpy(zero_copy_only=False).astype(str)
    vectors = column_matrix(table, "vector").astype(np.float32)
    broken = ~np.isfinite(vectors).all(axis=1)
    if broken.any():
        raise InputError(f"{path}: {int(broken.sum())} vector(s) hold NaN or inf, e.g. "
                         f"instance {str(ids[broken][0])!r}: the file is corrupt; "
                         "delete it to rebuild it")
    return ids, vectors


def pool_embeddings(pool: Pool, paths: dict[str, str | Path]) -> np.ndarray:
    """(n_pool, dim) embeddings in pool row order, from per-dataset files."""
    check_embedding_paths(pool, paths)
    return np.vstack([dataset_embeddings(pool, name, paths[name]) for name in pool.datasets])


def check_embedding_paths(pool: Pool, paths: Mapping[str, str | Path]) -> None:
    """Raise InputError naming the pool datasets that `paths` gives no embeddings file for."""
    absent = [name for name in pool.datasets if name not in paths]
    if absent:
        raise InputError(f"no embeddings file for pool dataset(s) {absent}; "
                         f"given: {sorted(paths)}")


def dataset_embeddings(pool: Pool, name: str, path: str | Path) -> np.ndarray:
    """(n_rows of `name`, dim) embeddings of one pool dataset, in pool row order, from its
    file: a job that needs a little of every dataset holds one file at a time."""
    ids, vectors = read_embeddings(path)
    position = {i: n for n, i in enumerate(ids)}
    want = pool.instance_ids[pool.rows(name)]
    missing = [i for i in want if i not in position]
    if missing:
        raise InputError(f"{path}: no embedding for {len(missing)} instance(s), "
                         f"e.g. {missing[:3]}")
    return vectors[[position[i] for i in want]]


def write_neighbours(instance_ids: np.ndarray, neighbours: Neighbours, path: str | Path) -> None:
    """One row per query: instance_id, neighbour_index, neighbour_dataset, distance (lists)."""
    table = pa.table({
        "instance_id": pa.array(instance_ids.astype(str)),
        "neighbour_index": matrix_column(neighbours.index),
        "neighbour_dataset": matrix_column(neighbours.dataset),
        "distance": matrix_column(neighbours.distance),
    })
    write_table(table, path)


def read_neighbours(path: str | Path) -> tuple[np.ndarray, Neighbours]:
    """Inverse of `write_neighbours`."""
    table = read_table(path, ["instance_id", "neighbour_index", "neighbour_dataset", "distance"])
    ids = table.column("instance_id").to_numpy(zero_copy_only=False).astype(str)
    return ids, Neighbours(
        index=column_matrix(table, "neighbour_index").astype(np.int64),
        dataset=column_matrix(table, "neighbour_dataset").astype(np.int32),
        distance=column_matrix(table, "distance").astype(np.float32),
    )


DISTANCE_COLUMNS = ["task", "dataset", "distance"]


def read_distances(*paths: str | Path) -> pl.DataFrame:
    """The (task, dataset, distance) rows of distance tables, in the order given: the matrix
    (results/distances.parquet) and tasks' rows (results/distances/{task}.parquet) alike."""
    return pl.concat([pl.from_arrow(read_table(path, DISTANCE_COLUMNS)).select(DISTANCE_COLUMNS)
                      for path in paths])


def read_ot_matrix(path: str | Path) -> dict[str, dict[str, float]]:
    """task -> {dataset -> OT distance} from a distances table (task, dataset, distance, ...)."""
    matrix: dict[str, dict[str, float]] = {}
    for task, dataset, value in read_distances(path).iter_rows():
        matrix.setdefault(task, {})[dataset] = value
    return matrix


def read_ot_row(path: str | Path, task: str) -> dict[str, float]:
    """{dataset -> OT distance from `task`}; InputError if the file has no row for the task."""
    matrix = read_ot_matrix(path)
    if task not in matrix:
        raise InputError(f"{path}: no OT distances from task {task!r}")
    return matrix[task]


def write_cells(pool: Pool, cells: np.ndarray, path: str | Path) -> None:
    """The approximate index (`ann.assign_cells`): the cell of every pool row, with the row's
    dataset and instance id so that a stale index is recognised."""
    names = np.asarray(pool.datasets)[pool.dataset_of]
    write_table(pa.table({"dataset": pa.array(names, pa.string()),
                          "instance_id": pa.array(pool.instance_ids.astype(str), pa.string()),
                          "cell": pa.array(np.asarray(cells, dtype=np.int32))}), path)


def read_cells(path: str | Path, pool: Pool) -> np.ndarray:
    """(n_pool,) int32 cells written by `write_cells` for this pool; InputError naming the file
    when it was built for another pool."""
    table = read_table(path, ["dataset", "instance_id", "cell"])
    names = np.asarray(pool.datasets)[pool.dataset_of]
    same = (table.num_rows == len(names)
            and np.array_equal(table.column("dataset").to_numpy(zero_copy_only=False), names)
            and np.array_equal(table.column("instance_id").to_numpy(zero_copy_only=False),
                               pool.instance_ids.astype(str)))
    if not same:
        raise InputError(f"{path}: the index was built for another pool (rows differ); "
                         "delete it to rebuild")
    return table.column("cell").to_numpy().astype(np.int32)
