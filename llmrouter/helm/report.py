"""The download report: which runs are missing or broken, and one summary line."""

from __future__ import annotations

import polars as pl

MISSING_COLUMNS = ["run", "suite", "status", "reason", "record"]


def missing_runs_tsv(downloads: pl.DataFrame, records: list[str]) -> str:
    """Tab-separated runs that were not downloaded (header always present).

    downloads: one row per run (DOWNLOAD_COLUMNS), in the order of `records`, the paths of
    the runs' download records; the `record` column lets `snakemake --forcerun <record>`
    retry exactly those runs.
    """
    frame = downloads.with_columns(pl.Series("record", records)).filter(pl.col("status") != "ok")
    lines = ["\t".join(MISSING_COLUMNS)]
    for row in frame.iter_rows(named=True):
        lines.append("\t".join(str(row[c]).replace("\t", " ").replace("\n", " ")
                               for c in MISSING_COLUMNS))
    return "\n".join(lines) + "\n"


def summary_line(downloads: pl.DataFrame, missing_path: str) -> str:
    """One line: runs by status, megabytes fetched, requests and retries."""
    counts = dict(downloads.group_by("status").len().iter_rows())
    parts = [f"{counts.get(s, 0)} {s}" for s in ("ok", "missing", "broken")]
    line = (f"[helm] {downloads.height} runs: {', '.join(parts)}; "
            f"{downloads['bytes'].sum() / 1e6:.1f} MB in {downloads['requests'].sum()} requests "
            f"({downloads['retries'].sum()} retries)")
    if counts.get("missing", 0) or counts.get("broken", 0):
        line += f"; skipped runs are listed in {missing_path}"
    return line
