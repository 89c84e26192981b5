"""Memory of the ablation's `calibration` descriptor (`calibration.select_calibration_bandwidth`),
whose kernel spans every pair of benchmark pairs (tasks x models of them).

Each way runs in its own process, on synthetic pairs of 57 tasks x `--models` models shaped like
helm_mmlu's (S1, S2 in [0.3, 1], accuracy near S1): the library's kernel built a block of rows
at a time, against the previous implementation (baseline, in the same run: the whole
(pairs x pairs) kernel at once). Peak memory is counted above what the process held before the
call. Both must choose the same bandwidth with the same error (to 1e-7: float32).

`--pairs results/smoother/pairs.parquet` (a finished run's) also runs both ways on the pairs
every task is scored with in the ablation, in both modes, and counts the tasks where their
(bandwidth, error) differ at all.

    .venv/bin/python benchmarks/bench_calibration.py [--models 78 312] [--pairs PATH]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np

from _common import peak_rss_mib, report

from llmrouter import bandwidth  # noqa: E402  (_common puts the repo on the path)
from llmrouter.ablation import CALIBRATION_GRID  # noqa: E402
from llmrouter.calibration import select_calibration_bandwidth  # noqa: E402

TASKS = 57


def whole_kernel(features: np.ndarray, acc: np.ndarray, groups: np.ndarray,
                 grid: tuple[float, ...]) -> tuple[float, float]:
    """The implementation before 2026-12-07: one (n_pairs, n_pairs) float32 kernel per
    bandwidth, each task's own block zeroed."""
    features = np.asarray(features, dtype=np.float32)
    acc32 = np.asarray(acc, dtype=np.float32)
    norms = (features**2).sum(axis=1)
    sq = np.maximum(norms[:, None] + norms[None, :] - 2.0 * features @ features.T, 0.0)
    blocks = [np.flatnonzero(groups == g) for g in np.unique(groups)]
    errors = []
    for b in grid:
        w = np.exp(sq * np.float32(-1.0 / (2.0 * b**2)))
        for idx in blocks:
            w[idx[0]:idx[-1] + 1, idx[0]:idx[-1] + 1] = 0.0
        num = w @ acc32
        den = w.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            pred = num / den
        bad = ~(den > 0)
        errors.append(np.inf if bad.any() else float(np.abs(pred - acc).mean()))
    return bandwidth.best_of_grid(grid, errors)


WAYS = {"whole_kernel": whole_kernel, "blocks": select_calibration_bandwidth}


def synthetic_pairs(models: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(features (n, 2), acc (n,), groups (n,)) of TASKS x `models` pairs, grouped by task."""
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(TASKS), models)
    features = rng.uniform(0.3, 1.0, (len(groups), 2))
    acc = np.clip(features[:, 0] + rng.normal(0.0, 0.08, len(groups)), 0.0, 1.0)
    return features, acc, groups


def run_one(way: str, models: int) -> dict:
    """One way on one size, in this process: its time, its memory above the inputs, its pick."""
    features, acc, groups = synthetic_pairs(models)
    before = peak_rss_mib()
    start = time.perf_counter()
    chosen, error = WAYS[way](features, acc, groups, CALIBRATION_GRID)
    return {"way": way, "models": models, "pairs": len(acc),
            "seconds": round(time.perf_counter() - start, 2),
            "memory_mib": round(peak_rss_mib() - before, 1),
            "bandwidth": chosen, "error": error}


def real_pairs_agree(path: str) -> dict:
    """Both ways on each task's t-free pairs of a finished run (as ablation._calibration
    takes them), strict and reference: how many (mode, task) give identical results."""
    import polars as pl

    from llmrouter.routing import pairs_rows  # noqa: E402

    pairs = pl.read_parquet(path)
    same = differ = 0
    for mode in ("strict", "reference"):
        for task in sorted(pairs["dataset"].unique().to_list()):
            rows = pairs_rows(pairs, task if mode == "strict" else None).filter(
                pl.col("dataset") != task)
            features, acc = rows.select("s1", "s2").to_numpy(), rows["acc"].to_numpy()
            groups = rows["dataset"].cast(pl.Categorical).to_physical().to_numpy()
            results = {way: WAYS[way](features, acc, groups, CALIBRATION_GRID) for way in WAYS}
            same += results["whole_kernel"] == results["blocks"]
            differ += results["whole_kernel"] != results["blocks"]
    return {"identical": same, "differ": differ}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, nargs="+", default=[78, 312])
    parser.add_argument("--pairs", help="a finished run's results/smoother/pairs.parquet")
    parser.add_argument("--one", nargs=2, metavar=("WAY", "MODELS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one[0], int(args.one[1]))))
        return
    rows = []
    for models in args.models:
        runs = {}
        for way in WAYS:
            done = subprocess.run([sys.executable, __file__, "--one", way, str(models)],
                                  stdout=subprocess.PIPE, text=True)  # its stderr shows
            if done.returncode:
                raise SystemExit(f"{way} on {models} models failed ({done.returncode})")
            runs[way] = json.loads(done.stdout.splitlines()[-1])
            print(json.dumps(runs[way]), flush=True)
        old, new = runs["whole_kernel"], runs["blocks"]
        # float32 kernels: the blocks' products may round their last bit otherwise
        if old["bandwidth"] != new["bandwidth"] or abs(old["error"] - new["error"]) > 1e-7:
            raise SystemExit(f"{models} models: the two ways differ: {old} / {new}")
        rows.append({"models": models, "pairs": new["pairs"],
                     "memory_ratio": round(old["memory_mib"] / max(new["memory_mib"], 1.0), 1),
                     "time_ratio": round(old["seconds"] / max(new["seconds"], 1e-9), 2)})
        print(f"{models} models ({new['pairs']} pairs): memory {old['memory_mib']} -> "
              f"{new['memory_mib']} MiB, time {old['seconds']} -> {new['seconds']} s, "
              f"same bandwidth {new['bandwidth']}, errors {old['error']:.10f} and "
              f"{new['error']:.10f}", flush=True)
    real = {}
    if args.pairs:
        real = real_pairs_agree(args.pairs)
        print(f"{args.pairs}: (bandwidth, error) identical for {real['identical']} (mode, task), "
              f"different for {real['differ']}", flush=True)
    report("bench_calibration", {"cases": rows, "real_pairs": real})


if __name__ == "__main__":
    main()
