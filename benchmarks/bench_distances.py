"""Time and values of the task-distance methods (`distances.method`) on helm_mmlu's clouds.

Each method computes the rows of `--tasks` MMLU subjects (evenly spaced in name order) against
each other, on the workflow's seeded subsamples of `--points` points per task, one row at a
time as compute_task_distances does. The baseline is the default, exact `emd`, in the same run.
For each entropic method and `--reg`: seconds per row and the ratio to emd's, a task's
distance to itself, the bias against the exact distance between two tasks (mean and range),
and how many tasks keep their exact nearest other task.

    .venv/bin/python benchmarks/bench_distances.py [--tasks 8] [--points 500] [--reg 0.05 0.1]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from _common import helm_mmlu_pool, report

from llmrouter import distances  # noqa: E402  (_common puts the repo on the path)

SEED = 0  # distances.seed's default: the workflow's subsamples


def task_clouds(n_tasks: int, points: int) -> dict[str, np.ndarray]:
    """`n_tasks` subjects, evenly spaced in name order, each its workflow subsample."""
    pool, vectors = helm_mmlu_pool()
    names = [pool.datasets[i] for i in np.linspace(0, len(pool.datasets) - 1, n_tasks,
                                                   dtype=int)]
    return {name: distances.subsample(vectors[pool.rows(name)], points, SEED, name)
            for name in names}


def matrix(clouds: dict[str, np.ndarray], method: str, reg: float | None
           ) -> tuple[np.ndarray, float]:
    """(tasks, tasks) distances, row by row, and the seconds per row."""
    start = time.perf_counter()
    rows = [list(distances.distance_row(cloud, clouds, method, reg).values())
            for cloud in clouds.values()]
    return np.array(rows), (time.perf_counter() - start) / len(clouds)


def nearest_other(values: np.ndarray) -> np.ndarray:
    """Each task's nearest other task (its own column excluded)."""
    masked = values + np.diag(np.full(len(values), np.inf))
    return masked.argmin(axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=8)
    parser.add_argument("--points", type=int, default=500)
    parser.add_argument("--reg", type=float, nargs="+", default=[0.05, 0.1])
    args = parser.parse_args()
    clouds = task_clouds(args.tasks, args.points)
    exact, exact_s = matrix(clouds, "emd", None)
    off = ~np.eye(len(exact), dtype=bool)
    print(f"{len(clouds)} tasks x <= {args.points} points; emd: {exact_s:.3f} s per row, "
          f"exact distances {exact[off].min():.4f} to {exact[off].max():.4f}")
    results: dict = {"tasks": len(clouds), "points": args.points,
                     "emd_s_per_row": round(exact_s, 4)}
    for reg in args.reg:
        for method in distances.ENTROPIC:
            values, seconds = matrix(clouds, method, reg)
            bias = values[off] - exact[off]
            kept = int((nearest_other(values) == nearest_other(exact)).sum())
            name = f"{method}_reg{reg:g}"
            results[name] = {"s_per_row": round(seconds, 4),
                             "time_vs_emd": round(seconds / exact_s, 2),
                             "self_max": float(np.diag(values).max()),
                             "bias_mean": float(bias.mean()), "bias_min": float(bias.min()),
                             "bias_max": float(bias.max()), "nearest_kept": kept}
            print(f"{method:>19} reg {reg:g}: {seconds:.3f} s per row ({seconds / exact_s:.1f}x "
                  f"emd); self up to {np.diag(values).max():.4f}; bias over exact "
                  f"{bias.mean():+.4f} ({bias.min():+.4f} to {bias.max():+.4f}); nearest task "
                  f"kept for {kept} of {len(clouds)}")
    report("distances", results)


if __name__ == "__main__":
    main()
