"""The ablation's `calibration` descriptor: p(t, m) from the benchmark pairs whose (S1, S2) are
nearest to the model's own on t, by a Gaussian kernel over that plane.

Every benchmark pair (d, m') is a point (S1, S2) with its accuracy acc(d, m'): the scored
task's t-free pairs are (tasks - 1) x models of them (4,368 on helm_mmlu, 280,000 with 5,000
models). Their kernel is computed a block of rows at a time, at most KERNEL_BLOCK_ELEMENTS
entries: the whole (pairs x pairs) kernel, as it was built before, takes n_pairs^2 x 4 bytes per
array (76 MB on helm_mmlu, 314 GB with 5,000 models, in run_ablation, a job of the default
target). Its time still grows with the square of the pairs.
"""

from __future__ import annotations

import numpy as np

from llmrouter import bandwidth

# Kernel entries held at once: 16 MB per float32 array of select_calibration_bandwidth (a
# block holds about four), 32 MB per float64 one of calibration_p.
KERNEL_BLOCK_ELEMENTS = 1 << 22


def row_blocks(n_rows: int, n_columns: int, block_elements: int) -> list[slice]:
    """Consecutive slices of 0..n_rows-1, each of at most block_elements // n_columns rows
    (at least one row)."""
    step = max(1, block_elements // max(n_columns, 1))
    return [slice(start, min(start + step, n_rows)) for start in range(0, n_rows, step)]


def calibration_p(target: np.ndarray, features: np.ndarray, acc: np.ndarray,
                  sigma: float, block_elements: int = KERNEL_BLOCK_ELEMENTS) -> np.ndarray:
    """p(t, m) = kernel-weighted mean of acc(d, m') over every benchmark pair (d, m'), by the
    distance between (S1, S2) of m on t and of m' on d; sigma: the kernel's bandwidth.

    target: (n_models, 2) S1, S2 of each model on t; features: (n_pairs, 2); acc: (n_pairs,).
    Returns (n_models,) float64. The pairs never include t (the caller's pairs are t-free).
    """
    target = np.asarray(target, dtype=np.float64)
    features = np.asarray(features, dtype=np.float64)
    out = np.empty(len(target))
    for rows in row_blocks(len(target), len(features), block_elements):
        # Column by column, so no (rows, n_pairs, 2) array: the same sums as over that axis.
        sq = sum((target[rows, j, None] - features[None, :, j]) ** 2
                 for j in range(features.shape[1]))
        log_w = -sq / (2.0 * sigma**2)
        w = np.exp(log_w - log_w.max(axis=1, keepdims=True))
        out[rows] = (w @ acc) / w.sum(axis=1)
    return out


def select_calibration_bandwidth(features: np.ndarray, acc: np.ndarray, groups: np.ndarray,
                                 grid: tuple[float, ...],
                                 block_elements: int = KERNEL_BLOCK_ELEMENTS
                                 ) -> tuple[float, float]:
    """(bandwidth, error) of `calibration_p` by leave-one-task-out over the pairs' tasks:
    every pair is predicted from the pairs of the other tasks (groups: (n_pairs,) task codes).

    Rows must be grouped by task. The kernel is float32, with each pair's own task's weights
    zeroed, a block of rows at a time for every bandwidth. A bandwidth so narrow that some pair
    has no weight left counts as infinitely bad. The blocks' matrix products may round the
    last bit of an error differently from one whole kernel's (1e-8 at most seen), never the
    choice on helm_mmlu's pairs (benchmarks/bench_calibration.py --pairs).
    """
    features = np.asarray(features, dtype=np.float32)
    acc32 = np.asarray(acc, dtype=np.float32)
    groups = np.asarray(groups)
    blocks = [np.flatnonzero(groups == g) for g in np.unique(groups)]
    if any(len(idx) != idx[-1] - idx[0] + 1 for idx in blocks):
        raise ValueError("pairs must be grouped by task (contiguous rows per task)")
    norms = (features**2).sum(axis=1)
    num = np.empty((len(grid), len(features)), dtype=np.float32)
    den = np.empty((len(grid), len(features)), dtype=np.float32)
    for rows in row_blocks(len(features), len(features), block_elements):
        # The rows' squared distances to every pair, without an (n, n, 2) intermediate.
        sq = np.maximum(norms[rows, None] + norms[None, :] - 2.0 * features[rows] @ features.T,
                        0.0)
        # Each task of the block's rows: its rows in the block, its columns (contiguous).
        own = [(slice(max(idx[0], rows.start) - rows.start, min(idx[-1] + 1, rows.stop)
                      - rows.start), slice(idx[0], idx[-1] + 1))
               for idx in blocks if idx[0] < rows.stop and idx[-1] >= rows.start]
        for i, b in enumerate(grid):
            w = np.exp(sq * np.float32(-1.0 / (2.0 * b**2)))
            # Zeroed, not subtracted afterwards: a task's own weights can dwarf the others'.
            for own_rows, own_columns in own:
                w[own_rows, own_columns] = 0.0
            num[i, rows] = w @ acc32
            den[i, rows] = w.sum(axis=1)
    errors = []
    for i in range(len(grid)):
        with np.errstate(invalid="ignore", divide="ignore"):
            pred = num[i] / den[i]
        bad = ~(den[i] > 0)
        errors.append(np.inf if bad.any() else float(np.abs(pred - acc).mean()))
    return bandwidth.best_of_grid(grid, errors)
