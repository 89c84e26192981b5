"""The training pool: every benchmark instance with its correctness for every kept model.

The pool's row order (datasets sorted by name, instances in their correctness-table order) is
the index space that neighbour lists refer to.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from llmrouter.artifacts import InputError


@dataclass(frozen=True)
class Pool:
    """Benchmark instances x models.

    datasets: sorted dataset names; dataset_of: (n_instances,) int32 index into `datasets`;
    instance_ids: (n_instances,) str; models: sorted model ids;
    correct: (n_instances, n_models) uint8, 1 where the model answered correctly.
    """

    datasets: list[str]
    dataset_of: np.ndarray
    instance_ids: np.ndarray
    models: list[str]
    correct: np.ndarray

    def rows(self, dataset: str) -> np.ndarray:
        """Pool row indices of one dataset, in order."""
        return np.flatnonzero(self.dataset_of == self.datasets.index(dataset))

    def dataset_sizes(self) -> np.ndarray:
        """(n_datasets,) int: each dataset's number of pool rows, in `datasets` order."""
        return np.bincount(self.dataset_of, minlength=len(self.datasets))

    def task_accuracy(self) -> np.ndarray:
        """(n_datasets, n_models) float64: each model's accuracy on each dataset."""
        counts = self.dataset_sizes().astype(np.float64)
        sums = np.zeros((len(self.datasets), len(self.models)))
        np.add.at(sums, self.dataset_of, self.correct)
        return sums / counts[:, None]


def check_neighbour_supply(pool: Pool, task: str, needed: int, strict: bool) -> None:
    """InputError unless the pool can give `task`'s inputs `needed` neighbours.

    The search keeps at most `needed` neighbours per dataset, own dataset out; in strict mode
    any one more dataset may be left out too (the smoother's nested pools), so the supply is
    counted without the largest other dataset. A new task (not in the pool) uses every dataset.
    """
    sizes = pool.dataset_sizes()
    counts = np.minimum(sizes, needed)
    others = np.array([name != task for name in pool.datasets])
    supply = int(counts[others].sum())
    nested = strict and task in pool.datasets
    if nested:
        supply -= int(counts[others].max(initial=0))
    if supply < needed:
        raise InputError(
            f"task {task!r}: the kNN predictor needs {needed} neighbours (the larger of "
            f"knn.k and smoother.descriptor_k) from the other datasets"
            f"{' with any one more left out (strict mode)' if nested else ''}, but they "
            f"offer {supply} ({int(others.sum())} other dataset(s), {int(sizes[others].sum())} "
            "instances); add datasets or lower knn.k / smoother.descriptor_k")


NOT_INCLUDED, EXCLUDED = "not in models.include", "in models.exclude"
CONFIG_REASONS = (NOT_INCLUDED, EXCLUDED)  # drops the config asked for (select_models)


def select_models(
    present: dict[str, set[str]],
    include: list[str] | None,
    exclude: list[str] | None,
) -> tuple[list[str], dict[str, str]]:
    """Choose the models of the pool.

    present: dataset -> models with results there. A model is kept when it is in `include`
    (or include is empty), not in `exclude`, and present in every dataset (the method needs a
    dense table). Returns (sorted kept models, {dropped model: reason}).
    Raises InputError for a model named in config that no dataset has.
    """
    seen = set().union(*present.values()) if present else set()
    for key, names in (("models.include", include), ("models.exclude", exclude)):
        unknown = sorted(set(names or []) - seen)
        if unknown:
            raise InputError(f"config {key}: unknown model(s) {unknown}; known: {sorted(seen)}")
    dropped: dict[str, str] = {}
    kept, chosen = [], 0
    for model in sorted(seen):
        if include and model not in include:
            dropped[model] = NOT_INCLUDED
        elif exclude and model in exclude:
            dropped[model] = EXCLUDED
        else:
            chosen += 1
            missing = sorted(d for d, models in present.items() if model not in models)
            if missing:
                dropped[model] = f"missing from {len(missing)} dataset(s): {missing[:5]}"
            else:
                kept.append(model)
    if not kept:
        if not chosen:
            raise InputError(f"config models.include / models.exclude leave no model of the "
                             f"{len(seen)} the datasets have: {sorted(seen)}")
        raise InputError(f"no model has results in every dataset; dropped: {dropped}")
    return kept, dropped


def dataset_matrix(table: pl.DataFrame, models: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Pivot one correctness table to (instance_ids, (n_instances, n_models) uint8).

    Instances lacking a result for any of `models` are dropped (the caller reports how many).
    """
    table = table.filter(pl.col("model").is_in(models))
    order = table.select("instance_id").unique(maintain_order=True).with_row_index("_row")
    wide = (
        table.select("instance_id", "model", pl.col("correct").cast(pl.UInt8))
        .pivot(on="model", index="instance_id", values="correct")
        .join(order, on="instance_id")
        .sort("_row")
        .drop_nulls()
    )
    matrix = wide.select(models).to_numpy().astype(np.uint8)
    return wide["instance_id"].to_numpy(), matrix


def build_pool(tables: dict[str, pl.DataFrame], models: list[str]) -> tuple[Pool, dict[str, int]]:
    """Stack every dataset's correctness into a Pool. Returns it and dropped-instance counts."""
    datasets = sorted(tables)
    ids, mats, codes, dropped = [], [], [], {}
    for code, name in enumerate(datasets):
        instance_ids, matrix = dataset_matrix(tables[name], models)
        dropped[name] = tables[name]["instance_id"].n_unique() - len(instance_ids)
        if len(instance_ids) == 0:
            raise InputError(f"dataset {name!r}: no instance has results for every kept model")
        ids.append(instance_ids)
        mats.append(matrix)
        codes.append(np.full(len(instance_ids), code, dtype=np.int32))
    correct = np.concatenate(mats)
    if correct.all():
        # A threshold at or below every score (e.g. 0) makes every method's pick perfect.
        raise InputError(f"every model is correct on every instance of all {len(datasets)} "
                         "dataset(s): is the threshold (table.threshold, helm.metrics) above "
                         "the lowest score?")
    pool = Pool(
        datasets=datasets,
        dataset_of=np.concatenate(codes),
        instance_ids=np.concatenate(ids).astype(str),
        models=list(models),
        correct=correct,
    )
    return pool, dropped
