"""Time and values of the task distances: exact OT against Sinkhorn, plain and debiased.

`--tasks` MMLU subjects (evenly spaced in name order), each the workflow's seeded subsample of
`--max-points` points, against each other, one row at a time as compute_task_distances computes
them (one thread, as Snakemake gives that job). The baseline is the default, exact `emd`, in the
same run, after an untimed warm-up row. For `distances.method: sinkhorn` at each `--reg`, and
for two debiased forms the workflow does not offer (the question is whether it should):

- `sharp divergence` (POT's): W(a, b) - (W(a, a) + W(b, b)) / 2 with W Sinkhorn's transport
  cost, as POT's `empirical_sinkhorn_divergence` (Genevay et al. 2018);
- `Feydy divergence`: the same with W the whole entropic objective, transport cost plus reg
  times KL(plan | a x b) (`ot.solve`), which is never negative (Feydy et al. 2019).

Each task's own cost is solved once here; a workflow job, which computes one row in its own
process, would solve every task's own cost, so a divergence's seconds per row are given as a
job would spend them: the row's cross solves plus `--tasks` own solves (their mean time).
Printed for each: seconds per row and the ratio to emd's, a task's largest distance to itself,
the bias against the exact distance between two tasks (mean and range), and for how many tasks
the nearest other task is the exact one's.

    .venv/bin/python benchmarks/bench_distances.py [--tasks 8] [--max-points 500]
        [--reg 0.05 0.1]
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = "1"  # before numpy loads its BLAS

import argparse  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from functools import partial  # noqa: E402

import numpy as np  # noqa: E402

from _common import helm_mmlu_pool, report  # noqa: E402

from llmrouter import distances  # noqa: E402  (_common puts the repo on the path)

SEED = 0  # distances.seed's default: the workflow's subsamples
Distance = Callable[[np.ndarray, np.ndarray], float]  # between two clouds


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


def matrix(clouds: dict[str, np.ndarray], distance: Distance, debiased: bool
           ) -> tuple[np.ndarray, float]:
    """(tasks, tasks) distances row by row, debiased by each task's own cost if asked, and the
    seconds a job computing one row would spend: the row's solves, plus every task's own cost
    when debiased (each solved once here, timed, and counted once per row)."""
    start = time.perf_counter()
    values = np.array([[distance(target, cloud) for cloud in clouds.values()]
                       for target in clouds.values()])
    per_row = (time.perf_counter() - start) / len(clouds)
    if debiased:
        start = time.perf_counter()
        own = np.array([distance(cloud, cloud) for cloud in clouds.values()])
        per_row += time.perf_counter() - start  # all n own costs, in every row's job
        values = np.maximum(values - 0.5 * (own[:, None] + own[None, :]), 0.0)
    return values, per_row


def nearest_other(values: np.ndarray) -> np.ndarray:
    """Each task's nearest other task (its own column excluded)."""
    return (values + np.diag(np.full(len(values), np.inf))).argmin(axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=8)
    parser.add_argument("--max-points", type=int, default=500)
    parser.add_argument("--reg", type=float, nargs="+", default=[0.05, 0.1])
    args = parser.parse_args()
    clouds = task_clouds(args.tasks, args.max_points)
    matrix(dict(list(clouds.items())[:2]), distances.ot_distance, False)  # warm-up, untimed
    exact, exact_s = matrix(clouds, distances.ot_distance, False)
    off = ~np.eye(len(exact), dtype=bool)
    print(f"{len(clouds)} tasks x <= {args.max_points} points, 1 thread; emd: {exact_s:.3f} s per "
          f"row, exact distances {exact[off].min():.4f} to {exact[off].max():.4f}")
    results: dict = {"tasks": len(clouds), "max_points": args.max_points,
                     "emd_s_per_row": round(exact_s, 4)}
    for reg in args.reg:
        sinkhorn = partial(distances.ot_distance, method="sinkhorn", reg=reg)
        ways = {"sinkhorn": (sinkhorn, False), "sharp divergence": (sinkhorn, True),
                "Feydy divergence": (partial(entropic_objective, reg=reg), True)}
        for name, (distance, debiased) in ways.items():
            values, seconds = matrix(clouds, distance, debiased)
            bias = values[off] - exact[off]
            kept = int((nearest_other(values) == nearest_other(exact)).sum())
            results[f"{name.lower().replace(' ', '_')}_reg{reg:g}"] = {
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
