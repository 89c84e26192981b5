"""Cut one dataset's correctness table out of a `table` source."""

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821

import polars as pl

from llmrouter.artifacts import InputError, write_table
from llmrouter.benchmark import correctness_table, scan_source_table
from llmrouter.logs import run_logged


def main() -> None:
    dataset = snakemake.wildcards.dataset  # noqa: F821
    path = snakemake.input[0]  # noqa: F821
    frame = scan_source_table(path).filter(pl.col("dataset") == dataset).collect()
    try:
        table, report = correctness_table(frame, dataset, snakemake.params.threshold)  # noqa: F821
    except InputError as error:
        raise InputError(f"{path}: {error}") from error
    for line in report.lines():
        logging.info(line)
    write_table(table, snakemake.output[0])  # noqa: F821


run_logged(snakemake.log[0], main)  # noqa: F821
