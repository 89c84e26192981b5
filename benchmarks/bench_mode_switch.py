"""What switching evaluation.mode (strict -> reference) costs after a finished strict run.

On a slice of helm_mmlu (the first --datasets subjects x first --models models), each code
version builds the strict run in its own folder under benchmarks/out/mode_switch/, then plans
(dry run) and times the run with evaluation.mode = reference. --baseline REV adds the same for an
older commit, checked out as a git worktree, for the ratio in one run: before 2d02415 the
neighbour search, the OT rows and the ablation took the mode as a param and reran with it.

    .venv/bin/python benchmarks/bench_mode_switch.py [--baseline 45b5706] [--datasets 6]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl
import yaml

from _common import EMBEDDING_CACHE, REPO, report, require_data

OUT = REPO / "benchmarks" / "out" / "mode_switch"
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
SWITCH = ("--config", 'evaluation={"mode": "reference"}')


def write_slice(datasets: int, models: int) -> Path:
    """The first `datasets` subjects x first `models` models (sorted) of helm_mmlu."""
    frame = pl.read_parquet(require_data())
    names = sorted(frame["dataset"].unique().to_list())[:datasets]
    ids = sorted(frame["model"].unique().to_list())[:models]
    path = OUT / "slice.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.filter(pl.col("dataset").is_in(names), pl.col("model").is_in(ids)).write_parquet(path)
    return path


def snakemake(code: Path, work: Path, *extra: str) -> tuple[float, str]:
    """(wall seconds, output) of the workflow of `code` run in `work`."""
    command = [SNAKEMAKE, "--snakefile", str(code / "Snakefile"), "--directory", str(work),
               "--configfile", str(work / "config.yaml"), "--cores", "2", *extra]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=work)
    if done.returncode != 0:
        raise SystemExit(f"snakemake failed in {work}:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return time.perf_counter() - start, done.stdout + done.stderr


def planned_jobs(output: str) -> dict[str, int]:
    """rule -> job count from the "Job stats" table of a dry run's output."""
    table = output.split("Job stats:", 1)[1].split("total", 1)[0]
    return {name: int(count) for name, count in re.findall(r"^(\w+)\s+(\d+)$", table, re.M)}


def measure(name: str, code: Path, table: Path) -> dict:
    """Build the strict run of `code`, then plan and time the switch to reference mode."""
    work = OUT / name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    config = {"source": "table", "table": {"path": str(table), "threshold": 0.5},
              "results": str(work / "results"), "embedding": {"cache_dir": str(EMBEDDING_CACHE)}}
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    build_s, _ = snakemake(code, work)
    _, plan = snakemake(code, work, *SWITCH, "-n")
    jobs = planned_jobs(plan)
    switch_s, _ = snakemake(code, work, *SWITCH)
    return {"name": name, "build_s": build_s, "switch_jobs": sum(jobs.values()),
            "switch_s": switch_s, "rules": jobs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", help="a commit to compare with (git worktree)")
    parser.add_argument("--datasets", type=int, default=6)
    parser.add_argument("--models", type=int, default=8)
    args = parser.parse_args()
    table = write_slice(args.datasets, args.models)
    rows = []
    if args.baseline:
        with tempfile.TemporaryDirectory() as tmp:
            tree = Path(tmp) / "baseline"
            subprocess.run(["git", "-C", str(REPO), "worktree", "add", "-q", "--detach",
                            str(tree), args.baseline], check=True)
            try:
                rows.append(measure("baseline", tree, table))
            finally:
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force",
                                str(tree)], check=True)
    rows.append(measure("current", REPO, table))
    print(f"{args.datasets} subjects x {args.models} models; switch strict -> reference "
          f"after a finished strict run; baseline: {args.baseline or 'none'}")
    print(f"{'code':10s} {'build s':>8s} {'switch jobs':>12s} {'switch s':>9s}  rules rerun")
    for row in rows:
        print(f"{row['name']:10s} {row['build_s']:8.1f} {row['switch_jobs']:12d} "
              f"{row['switch_s']:9.1f}  {', '.join(sorted(row['rules']))}")
    result = {"datasets": args.datasets, "models": args.models, "baseline": args.baseline,
              **{f"{r['name']}_{key}": r[key] for r in rows
                 for key in ("build_s", "switch_jobs", "switch_s")}}
    if len(rows) == 2:
        result["switch_time_ratio"] = rows[0]["switch_s"] / rows[1]["switch_s"]
        print(f"switch time, baseline / current: {result['switch_time_ratio']:.2f}")
    report("mode_switch", result)


if __name__ == "__main__":
    main()
