"""Figure: a new task's models by S3, the pick highlighted."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821

from llmrouter.threads import bind_threads

bind_threads(snakemake.threads)  # noqa: F821  (before anything imports polars)

import polars as pl

from llmrouter.artifacts import read_table
from llmrouter.figures import ranking_figure, save_png
from llmrouter.logs import run_logged


def main() -> None:
    scores = pl.from_arrow(read_table(snakemake.input[0], ["task", "model", "s1", "s3", "p"]))  # noqa: F821
    save_png(ranking_figure(scores), snakemake.output[0])  # noqa: F821


run_logged(snakemake.log[0], main)  # noqa: F821
