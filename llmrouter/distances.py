"""Pairwise task distances: optimal transport between the embedding clouds of two tasks.

A task is the uniform distribution over its inputs' unit-norm embeddings; the ground cost is
the cosine distance (1 - cosine similarity), the same as the kNN predictor's. The distance is
the optimal transport cost with that ground cost between two tasks, exact (`ot.emd2`) or
entropic (`ot.sinkhorn`), on at most `max_points` points per task drawn with a seed derived
from the task's name, so a task's subsample is the same in every job. On unit vectors
1 - cos = |x - y|^2 / 2, so the exact cost is half the squared 2-Wasserstein distance: 0 for a
cloud against itself and symmetric, but not a metric (no triangle inequality).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType

import numpy as np
import polars as pl

from llmrouter import knn
from llmrouter.artifacts import InputError
from llmrouter.pool import Pool
from llmrouter.rng import task_rng
from llmrouter.store import check_embedding_paths, dataset_embeddings

# POT probes for torch, jax, cupy and tensorflow at import (seconds of start-up in every job
# where installed); we only pass numpy arrays.
for _backend in ("PYTORCH", "JAX", "CUPY", "TENSORFLOW"):
    os.environ.setdefault(f"POT_BACKEND_DISABLE_{_backend}", "1")
# POT also imports scikit-learn (k-means for its low-rank and quantized solvers) and networkx
# (graph partitions for Gromov-Wasserstein) where installed, each behind its own try: about 1 s
# of the 2.2 s a distance job spent importing, in each of helm_mmlu's 57 jobs. Neither solver
# is used here.
POT_OPTIONAL = ("sklearn", "networkx")


def import_pot() -> ModuleType:
    """POT, imported without its optional POT_OPTIONAL hooks where this process has not
    imported those packages yet. The packages stay importable afterwards, but POT's hooks stay
    off for the whole process (e.g. its low-rank Sinkhorn's k-means initialisation): nothing
    the workflow calls. Any module first imported while POT loads sees them missing too (today
    only scipy's, which do not look)."""
    if "ot" in sys.modules:
        return sys.modules["ot"]
    blocked = [name for name in POT_OPTIONAL if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]  (import raises ImportError)
    try:
        import ot as pot
    finally:
        for name in blocked:
            if sys.modules.get(name, "") is None:
                del sys.modules[name]
    return pot


ot = import_pot()

METHODS = ("emd", "sinkhorn")
SINKHORN_ITERATIONS, SINKHORN_TOLERANCE = 2_000, 1e-7
# A plan whose marginals are off by more than this in total (L1) after SINKHORN_ITERATIONS is
# refused: moving mass e to meet them changes the cost by at most 2 e (costs are in [0, 2]).
# POT's own stopping error is the L2 norm of one marginal's, up to sqrt(n) times smaller.
SINKHORN_MAX_ERROR = 1e-4


def subsample(vectors: np.ndarray, max_points: int, seed: int, task: str) -> np.ndarray:
    """At most `max_points` rows of `vectors` (n, dim), chosen without replacement.

    The draw depends only on (seed, task name, n), so every job that needs the task's cloud
    gets the same points. Rows keep their original order.
    """
    n = len(vectors)
    if max_points < 1:
        raise ValueError(f"max_points must be positive, got {max_points}")
    if n <= max_points:
        return vectors
    rng = task_rng(seed, task)
    return vectors[np.sort(rng.choice(n, size=max_points, replace=False))]


def cosine_cost(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n_a, n_b) float64 cosine distances between the rows of a and b, clipped at 0.

    Rows are renormalised in float64 so that a point's distance to itself is 0 up to 1e-15
    (float32 unit vectors are off by ~1e-8, which would make a cloud's distance to itself
    positive).
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return np.maximum(1.0 - a @ b.T, 0.0)


def marginal_error(plan: np.ndarray, weights_a: np.ndarray, weights_b: np.ndarray) -> float:
    """How far a transport plan is from having the marginals it should: the L1 distance of its
    row sums to `weights_a` plus that of its column sums to `weights_b`."""
    return float(np.abs(plan.sum(axis=1) - weights_a).sum()
                 + np.abs(plan.sum(axis=0) - weights_b).sum())


def ot_distance(
    a: np.ndarray, b: np.ndarray, method: str = "emd", reg: float | None = 0.05
) -> float:
    """Optimal transport cost between the uniform clouds `a` (n_a, dim) and `b` (n_b, dim).

    method "emd": exact network simplex (ot.emd2), which ignores `reg`; "sinkhorn": entropic
    with regularisation `reg` (ot.sinkhorn, log-domain for stability), the transport cost of
    its plan without the entropy term. In units of cosine distance, so in [0, 2]; 0 for a
    cloud against itself (exact), symmetric.

    Raises InputError when the solver stops before its optimum: POT only warns (emd) or says
    nothing (sinkhorn), and keeps a value that is not the OT cost (with a tiny reg, even below
    the exact one).
    """
    if len(a) == 0 or len(b) == 0:
        raise ValueError("a task cloud is empty")
    cost = cosine_cost(a, b)
    weights_a = np.full(len(a), 1.0 / len(a))
    weights_b = np.full(len(b), 1.0 / len(b))
    if method == "emd":
        value, log = ot.emd2(weights_a, weights_b, cost, numItermax=1_000_000, log=True)
        if log["warning"] is not None:
            raise InputError(f"distances: exact OT between clouds of {len(a)} and {len(b)} "
                             f"points did not reach its optimum ({log['warning']}); lower "
                             "distances.max_points")
    elif method == "sinkhorn":
        if reg is None:
            raise ValueError("Sinkhorn needs a regularisation reg > 0")
        plan = ot.sinkhorn(weights_a, weights_b, cost, reg, method="sinkhorn_log",
                           numItermax=SINKHORN_ITERATIONS, stopThr=SINKHORN_TOLERANCE,
                           warn=False)
        value = float((plan * cost).sum())
        error = marginal_error(plan, weights_a, weights_b)
        if not error <= SINKHORN_MAX_ERROR:  # NaN too (an overflowing plan)
            raise InputError(f"distances: Sinkhorn with reg {reg} did not converge in "
                             f"{SINKHORN_ITERATIONS} iterations (marginal error {error:.2g}); "
                             "raise distances.reg or use distances.method emd")
    else:
        raise ValueError(f"unknown OT method {method!r}; known: {METHODS}")
    return max(float(value), 0.0)


def distance_row(
    target: np.ndarray, others: dict[str, np.ndarray], method: str = "emd",
    reg: float | None = 0.05,
) -> dict[str, float]:
    """OT distance of one (already subsampled) cloud to each of `others` (name -> cloud)."""
    return {name: ot_distance(target, cloud, method, reg) for name, cloud in others.items()}


def read_task_clouds(pool: Pool, paths: Mapping[str, str | Path], max_points: int,
                     seed: int) -> dict[str, np.ndarray]:
    """Every benchmark task's subsampled cloud (name -> (<= max_points, dim)) of its unit-norm
    embeddings, the same points in every job. The per-dataset files (`paths`) are read one at
    a time: the job holds at most max_points points of each task, never the whole pool."""
    check_embedding_paths(pool, paths)
    return {name: subsample(knn.normalize(dataset_embeddings(pool, name, paths[name])),
                            max_points, seed, name)
            for name in pool.datasets}


def row_frame(task: str, row: dict[str, float], task_u: float) -> pl.DataFrame:
    """One task's row of results/distances.parquet: task, dataset, distance, task_u."""
    return pl.DataFrame({"task": [task] * len(row), "dataset": list(row),
                         "distance": np.array(list(row.values()), dtype=np.float64),
                         "task_u": np.full(len(row), task_u)})
