"""Time and values of the task distances: exact OT against Sinkhorn, plain and debiased.

`--tasks` MMLU subjects (evenly spaced in name order), each the workflow's seeded subsample of
`--points` points, against each other, one row at a time as compute_task_distances computes
them (one thread, as Snakemake gives that job). The baseline is the default, exact `emd`, in the
same run, after an untimed warm-up row. For `distances.method: sinkhorn` at each `--reg`, and
for two debiased forms the workflow does not offer (the question is whether it should):

- `sharp divergence`: W(a, b) - (W(a, a) + W(b, b)) / 2 with W Sinkhorn's transport cost, as
  POT's `empirical_sinkhorn_divergence` (Genevay et al. 2018);
- `divergence`: the same with W the whole entropic objective, transport cost plus reg times
  KL(plan | a x b) (`ot.solve`), which is never negative (Feydy et al. 2019);

each task's own cost solved once. Printed for each: seconds per row and the ratio to emd's, a
task's largest distance to itself, the bias against the exact distance between two tasks (mean
and range), and for how many tasks the nearest other task is the exact one's.

    .venv/bin/python benchmarks/bench_distances.py [--tasks 8] [--points 500] [--reg 0.05 0.1]
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = "1"  # before numpy loads its BLAS

import argparse  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402

from _common import helm_mmlu_pool, report  # noqa: E402

from llmrouter import distances  # noqa: E402  (_common puts the repo on the path)

SEED = 0  # distances.seed's default: the workflow's subsamples
Cost = Callable[[np.ndarray, np.ndarray], float]


def task_clouds(n_tasks: int, points: int) -> dict[str, np.ndarray]:
    """`n_tasks` subjects, evenly spaced in name order, each its workflow subsample."""
    pool, vectors = helm_mmlu_pool()
    if not 2 <= n_tasks <= len(pool.datasets):
        raise SystemExit(f"--tasks {n_tasks}: from 2 to {len(pool.datasets)}")
    names = [pool.datasets[i] for i in np.linspace(0, len(pool.datasets) - 1, n_tasks,
                                                   dtype=int)]
    return {name: distances.subsample(vectors[pool.rows(name)], points, SEED, name)
            for name in names}


def entropic_objective(a: np.ndarray, b: np.ndarray, reg: float) -> float:
    """Sinkhorn's whole objective between the uniform clouds: transport cost plus
    reg KL(plan | a x b), the W of Feydy et al.'s divergence."""
    weights = (np.full(len(a), 1.0 / len(a)), np.full(len(b), 1.0 / len(b)))
    solved = distances.ot.solve(distances.cosine_cost(a, b), *weights, reg=reg, reg_type="KL",
                                method="sinkhorn_log", max_iter=distances.SINKHORN_ITERATIONS,
                                tol=distances.SINKHORN_TOLERANCE)
    return float(solved.value)


def matrix(clouds: dict[str, np.ndarray], cost: Cost, debiased: bool
           ) -> tuple[np.ndarray, float]:
    """(tasks, tasks) distances row by row, debiased by each task's own cost (solved once)
    if asked, and the seconds per row."""
    start = time.perf_counter()
    values = np.array([[cost(target, cloud) for cloud in clouds.values()]
                       for target in clouds.values()])
    if debiased:
        own = np.array([cost(cloud, cloud) for cloud in clouds.values()])
        values = np.maximum(values - 0.5 * (own[:, None] + own[None, :]), 0.0)
    return values, (time.perf_counter() - start) / len(clouds)


def nearest_other(values: np.ndarray) -> np.ndarray:
    """Each task's nearest other task (its own column excluded)."""
    return (values + np.diag(np.full(len(values), np.inf))).argmin(axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=8)
    parser.add_argument("--points", type=int, default=500)
    parser.add_argument("--reg", type=float, nargs="+", default=[0.05, 0.1])
    args = parser.parse_args()
    clouds = task_clouds(args.tasks, args.points)
    exact_cost = lambda a, b: distances.ot_distance(a, b)  # noqa: E731
    matrix(dict(list(clouds.items())[:2]), exact_cost, False)  # warm-up, untimed
    exact, exact_s = matrix(clouds, exact_cost, False)
    off = ~np.eye(len(exact), dtype=bool)
    print(f"{len(clouds)} tasks x <= {args.points} points, 1 thread; emd: {exact_s:.3f} s per "
          f"row, exact distances {exact[off].min():.4f} to {exact[off].max():.4f}")
    results: dict = {"tasks": len(clouds), "points": args.points,
                     "emd_s_per_row": round(exact_s, 4)}
    for reg in args.reg:
        sinkhorn = lambda a, b: distances.ot_distance(a, b, "sinkhorn", reg)  # noqa: E731
        ways = {"sinkhorn": (sinkhorn, False), "sharp divergence": (sinkhorn, True),
                "divergence": (lambda a, b: entropic_objective(a, b, reg), True)}
        for name, (cost, debiased) in ways.items():
            values, seconds = matrix(clouds, cost, debiased)
            bias = values[off] - exact[off]
            kept = int((nearest_other(values) == nearest_other(exact)).sum())
            results[f"{name.replace(' ', '_')}_reg{reg:g}"] = {
                "s_per_row": round(seconds, 4), "time_vs_emd": round(seconds / exact_s, 2),
                "self_max": float(np.diag(values).max()), "bias_mean": float(bias.mean()),
                "bias_min": float(bias.min()), "bias_max": float(bias.max()),
                "nearest_kept": kept}
            print(f"{name:>16} reg {reg:g}: {seconds:.3f} s per row ({seconds / exact_s:.1f}x "
                  f"emd); self up to {np.diag(values).max():.4f}; bias over exact "
                  f"{bias.mean():+.4f} ({bias.min():+.4f} to {bias.max():+.4f}); nearest task "
                  f"kept for {kept} of {len(clouds)}", flush=True)
    report("bench_distances", results)


if __name__ == "__main__":
    main()
