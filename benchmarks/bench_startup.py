"""Start-up of the workflow's jobs: the seconds each rule script spends importing.

Every job is its own Python process, so a script's imports are paid once per job: 57 times for
each per-task rule on helm_mmlu. For each script in workflow_scripts/, a fresh interpreter runs
the script's top-level import statements (alone: a job also sizes its thread pools first, left
at their defaults here), `--repeats` times, interleaved across scripts; the median is printed. The baseline, in the same run: the distance
job's imports with POT imported plainly first (its scikit-learn and networkx hooks on), as it
was before `llmrouter.distances.import_pot`.

    .venv/bin/python benchmarks/bench_startup.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import ast
import os
import statistics
import subprocess
import sys
import time

from _common import REPO, report

SCRIPTS = REPO / "workflow_scripts"
# What llmrouter.distances sets before POT loads: the baseline differs in the hooks alone.
PLAIN_POT = "import os\nos.environ['POT_BACKEND_DISABLE_PYTORCH'] = '1'\nimport ot\n"


def import_lines(script: str) -> str:
    """The top-level imports of a workflow script, as code."""
    tree = ast.parse((SCRIPTS / f"{script}.py").read_text())
    return "\n".join(ast.unparse(node) for node in tree.body
                     if isinstance(node, (ast.Import, ast.ImportFrom)))


def seconds(code: str) -> float:
    """Wall seconds of a fresh interpreter running `code` from the repository."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, env=env)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    cases = {path.stem: import_lines(path.stem) for path in sorted(SCRIPTS.glob("*.py"))}
    cases["compute_task_distances, POT plain (baseline)"] = (
        PLAIN_POT + cases["compute_task_distances"])
    cases["python alone"] = "pass"
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.repeats):
        for name, code in cases.items():
            times[name].append(seconds(code))
    median = {name: statistics.median(values) for name, values in times.items()}
    for name, value in sorted(median.items(), key=lambda item: -item[1]):
        print(f"{name:>48}: {value:.2f} s")
    mine = median["compute_task_distances"]
    plain = median["compute_task_distances, POT plain (baseline)"]
    print(f"distance job imports: {mine:.2f} s against {plain:.2f} s with POT plain "
          f"({plain / mine:.2f}x; {plain - mine:.2f} s in each of helm_mmlu's 57 jobs)")
    report("bench_startup", {"repeats": args.repeats,
                             "median_s": {k: round(v, 3) for k, v in median.items()},
                             "distance_job_speedup": round(plain / mine, 2)})


if __name__ == "__main__":
    main()
