"""Summarize every HELM run's download: missing_runs.tsv and one summary line."""

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821

from llmrouter.threads import bind_threads

bind_threads(snakemake.threads)  # noqa: F821  (before anything imports polars)

import polars as pl

from llmrouter.artifacts import write_table, write_text
from llmrouter.helm.download import DOWNLOAD_COLUMNS
from llmrouter.helm.report import missing_runs_tsv, summary_line
from llmrouter.logs import run_logged


def main() -> None:
    output = snakemake.output  # noqa: F821
    downloads = pl.concat([pl.read_parquet(p) for p in snakemake.input.downloads])  # noqa: F821
    downloads = downloads.cast(DOWNLOAD_COLUMNS)
    records = [str(p) for p in snakemake.input.downloads]  # noqa: F821
    write_text(missing_runs_tsv(downloads, records), output.missing)
    write_table(downloads, output.downloads)
    line = summary_line(downloads, output.missing)
    logging.info("%s", line)
    print(line, file=sys.__stdout__, flush=True)


run_logged(snakemake.log[0], main)  # noqa: F821
