"""The download report: missing_runs.tsv and the summary line."""

from __future__ import annotations

import polars as pl

from llmrouter.helm.download import DOWNLOAD_COLUMNS
from llmrouter.helm.report import missing_runs_tsv, summary_line


def downloads() -> pl.DataFrame:
    rows = [("a:model=x", "ok", "", 3, 0, 1_500_000), ("b:model=x", "missing", "run_spec.json: "
             "HTTP 404", 1, 0, 0), ("c:model=y", "broken", "bad\tJSON", 4, 3, 0)]
    return pl.DataFrame([{"run": r, "suite": "v1", "status": s, "folder": f"f/{r}", "files": [],
                          "reason": why, "requests": n, "retries": k, "bytes": b,
                          "cached": 0, "seconds": 0.1} for r, s, why, n, k, b in rows],
                        schema=DOWNLOAD_COLUMNS)


def test_missing_runs_tsv_lists_runs_not_downloaded():
    text = missing_runs_tsv(downloads(), ["r/a.parquet", "r/b.parquet", "r/c.parquet"])
    lines = text.splitlines()
    assert lines[0] == "run\tsuite\tstatus\treason\trecord"
    assert lines[1:] == ["b:model=x\tv1\tmissing\trun_spec.json: HTTP 404\tr/b.parquet",
                         "c:model=y\tv1\tbroken\tbad JSON\tr/c.parquet"]


def test_summary_line_counts_statuses():
    line = summary_line(downloads(), "results/helm/missing_runs.tsv")
    assert line == ("[helm] 3 runs: 1 ok, 1 missing, 1 broken; 1.5 MB in 8 requests (3 retries);"
                    " skipped runs are listed in results/helm/missing_runs.tsv")
