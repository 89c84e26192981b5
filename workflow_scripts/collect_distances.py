"""All tasks' rows of the distance matrix in one long table."""

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821

from llmrouter.threads import bind_threads

bind_threads(snakemake.threads)  # noqa: F821  (before anything imports polars)

import polars as pl

from llmrouter.artifacts import read_table, write_table
from llmrouter.logs import run_logged

COLUMNS = ["task", "dataset", "distance", "task_u"]


def main() -> None:
    frames = [pl.from_arrow(read_table(p, COLUMNS)) for p in snakemake.input]  # noqa: F821
    table = pl.concat(frames).select(COLUMNS).sort("task", "dataset")
    logging.info("%d tasks x %d datasets", table["task"].n_unique(), table["dataset"].n_unique())
    write_table(table, snakemake.output[0])  # noqa: F821


run_logged(snakemake.log[0], main)  # noqa: F821
