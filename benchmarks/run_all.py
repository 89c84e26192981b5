"""Run every benchmark one after the other (never in parallel: they would time each other).

Each script prints its own table and one `RESULT {json}` line; this collects those lines into
benchmarks/out/results.json (git-ignored). `--quick` skips the slow cases (the x100 scale-up,
the no-op re-run, which first needs a full workflow run, the mode switch and the routing
comparison).

    .venv/bin/python benchmarks/run_all.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--onnx-python", help="interpreter with sentence-transformers[onnx] "
                        "(bench_embedding.py: adds ONNX Runtime int8)")
    args = parser.parse_args()
    onnx = ["--onnx-python", args.onnx_python] if args.onnx_python else []
    runs = [
        ["bench_loto.py"],
        ["bench_knn.py"],
        ["bench_embedding.py", *onnx] + ([] if args.quick else ["--routing"]),
        ["bench_tokenise.py"],
        ["bench_cache_read.py"],
        ["bench_calibration.py"] + (["--models", "78"] if args.quick else []),
        ["bench_distances.py"] + (["--tasks", "4", "--reg", "0.1"] if args.quick else []),
        ["bench_startup.py"] + (["--repeats", "2"] if args.quick else []),
        ["bench_scale.py", "--cases", "real", "instances-x10", "models-5000"],
    ] + ([] if args.quick else [
        ["bench_scale.py", "--cases", "instances-x100"],
        ["bench_noop.py"],
        ["bench_mode_switch.py"],
    ])
    results = []
    for run in runs:
        print(f"== {' '.join(run)}", flush=True)
        start = time.perf_counter()
        done = subprocess.run([sys.executable, str(HERE / run[0]), *run[1:]],
                              stdout=subprocess.PIPE, text=True, cwd=HERE)
        lines = done.stdout.splitlines()
        print("\n".join(line for line in lines if not line.startswith("RESULT ")), flush=True)
        found = [json.loads(line[7:]) for line in lines if line.startswith("RESULT ")]
        results.extend(found or [{"benchmark": run[0], "failed": done.returncode}])
        print(f"({time.perf_counter() - start:.0f} s, exit {done.returncode})\n", flush=True)
    out = HERE / "out" / "results.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=1, default=float))
    print(f"results: {out}")
    if any("failed" in r for r in results):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
