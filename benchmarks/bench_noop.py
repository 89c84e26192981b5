"""Snakemake overhead: a no-op re-run of the full helm_mmlu workflow (57 tasks x 79 models).

The workflow runs in its own working folder (benchmarks/out/noop/, git-ignored) with the
repository's config/helm_mmlu.yaml, results inside it and the shared embedding cache. The first
call builds everything (minutes; --build-only stops there); every later call times
`snakemake --cores 2` when nothing is left to do (baseline: the same command's dry run, -n,
which also builds the DAG and checks every file but starts nothing), and reports the number of
jobs in the DAG.

    .venv/bin/python benchmarks/bench_noop.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import yaml

from _common import EMBEDDING_CACHE, HELM_MMLU, REPO, report, require_data

WORKDIR = REPO / "benchmarks" / "out" / "noop"
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def config_path() -> Path:
    config = yaml.safe_load((REPO / "config" / "helm_mmlu.yaml").read_text())
    config["table"]["path"] = str(HELM_MMLU)
    config["results"] = str(WORKDIR / "results")
    config.setdefault("embedding", {})["cache_dir"] = str(EMBEDDING_CACHE)
    WORKDIR.mkdir(parents=True, exist_ok=True)
    path = WORKDIR / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def snakemake(config: Path, *extra: str) -> tuple[float, subprocess.CompletedProcess]:
    command = [SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(WORKDIR),
               "--configfile", str(config), "--cores", "2", *extra]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=WORKDIR)
    return time.perf_counter() - start, done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--build-only", action="store_true")
    args = parser.parse_args()
    require_data()
    config = config_path()
    build_s, done = snakemake(config)
    if done.returncode != 0:
        raise SystemExit(f"the workflow failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    jobs = re.findall(r"^total\s+(\d+)", done.stdout + done.stderr, re.M)
    print(f"first run: {build_s:.1f} s ({jobs[0] if jobs else 0} jobs run)")
    if args.build_only:
        return
    noop, dry = [], []
    for _ in range(args.repeats):
        seconds, done = snakemake(config)
        if "Nothing to be done" not in done.stdout + done.stderr:
            raise SystemExit("the re-run was not a no-op:\n" + (done.stdout + done.stderr)[-3000:])
        noop.append(seconds)
        seconds, _ = snakemake(config, "-n")
        dry.append(seconds)
    seconds, done = snakemake(config, "-n", "--forceall", "--quiet", "rules")
    dag_jobs = re.findall(r"^total\s+(\d+)", done.stdout + done.stderr, re.M)
    print(f"no-op re-run: {min(noop):.2f} s (best of {args.repeats}; all {noop}) | dry run -n: "
          f"{min(dry):.2f} s | DAG: {dag_jobs[0] if dag_jobs else '?'} jobs")
    report("noop", {"noop_s": min(noop), "noop_all_s": noop, "dry_run_s": min(dry),
                    "dag_jobs": int(dag_jobs[0]) if dag_jobs else None, "first_run_s": build_s})


if __name__ == "__main__":
    main()
