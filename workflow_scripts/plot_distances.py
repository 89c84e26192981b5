"""Figure: heatmap of the task distance matrix (benchmark tasks, then new tasks)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821

import polars as pl

from llmrouter.artifacts import read_table
from llmrouter.figures import distance_figure, save_png
from llmrouter.logs import run_logged


def main() -> None:
    columns = ["task", "dataset", "distance"]
    frames = [pl.from_arrow(read_table(p, columns)).select(columns) for p in snakemake.input]  # noqa: F821
    save_png(distance_figure(pl.concat(frames).unique(["task", "dataset"])),
             snakemake.output[0])  # noqa: F821


run_logged(snakemake.log[0], main)  # noqa: F821
