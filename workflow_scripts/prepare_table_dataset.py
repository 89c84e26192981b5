"""Cut one dataset's correctness table out of a `table` source."""

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821

from llmrouter.threads import bind_threads

bind_threads(snakemake.threads)  # noqa: F821  (before anything imports polars)

from llmrouter.artifacts import InputError, write_table
from llmrouter.benchmark import correctness_table, read_dataset_rows
from llmrouter.logs import run_logged


def main() -> None:
    dataset = snakemake.wildcards.dataset  # noqa: F821
    path = snakemake.input[0]  # noqa: F821
    frame = read_dataset_rows(path, dataset)
    try:
        table, report = correctness_table(frame, dataset, snakemake.params.threshold)  # noqa: F821
    except InputError as error:
        raise InputError(f"{path}: {error}") from error
    for line in report.lines():
        logging.info(line)
    write_table(table, snakemake.output[0])  # noqa: F821


run_logged(snakemake.log[0], main)  # noqa: F821
