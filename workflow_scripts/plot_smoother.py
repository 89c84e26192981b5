"""Figure: the smoother's fitted p against u per model (best models), with its points."""

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821

import polars as pl

from llmrouter.artifacts import read_table
from llmrouter.figures import save_png, smoother_figure, top_models, u_curve_bandwidth
from llmrouter.logs import run_logged
from llmrouter.store import read_pool


def main() -> None:
    pool = read_pool(snakemake.input.pool, snakemake.input.models)  # noqa: F821
    pairs = pl.from_arrow(read_table(snakemake.input.pairs, ["heldout", "dataset", "model", "u",  # noqa: F821
                                                            "acc"]))
    pairs = pairs.filter(pl.col("heldout").is_null())
    fitted = pl.from_arrow(read_table(snakemake.input.bandwidth))  # noqa: F821
    fitted = fitted.filter(pl.col("task").is_null() & (pl.col("descriptor") == "knn"))
    bandwidth = u_curve_bandwidth(fitted["bandwidth"].item() if fitted.height else None,
                                  snakemake.params.descriptor, snakemake.params.bandwidth)  # noqa: F821
    marks = {}
    for path in snakemake.input.new_tasks:  # noqa: F821
        row = pl.from_arrow(read_table(path, ["task", "task_u"]))
        marks[row["task"][0]] = float(row["task_u"][0])
    models = top_models(pool.task_accuracy(), pool.models)
    logging.info("smoother curves of %d models, sigma = %g, %d new task(s) marked",
                 len(models), bandwidth, len(marks))
    save_png(smoother_figure(pairs, models, bandwidth, marks), snakemake.output[0])  # noqa: F821


run_logged(snakemake.log[0], main)  # noqa: F821
