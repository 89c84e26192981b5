"""Figure: the smoother's fitted p against u per model (best models), with its points."""

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821

from llmrouter.threads import bind_threads

bind_threads(snakemake.threads)  # noqa: F821  (before anything imports polars)

import polars as pl

from llmrouter.artifacts import read_table
from llmrouter.figures import (fitted_knn_bandwidth, save_png, smoother_figure, top_models,
                               u_curve_bandwidth)
from llmrouter.logs import run_logged
from llmrouter.routing import pairs_rows
from llmrouter.store import read_pool


def main() -> None:
    inputs, params = snakemake.input, snakemake.params  # noqa: F821
    pool = read_pool(inputs.pool, inputs.models)
    pairs = pl.from_arrow(read_table(inputs.pairs, ["heldout", "dataset", "model", "u", "acc"]))
    pairs = pairs_rows(pairs, None)  # the benchmark's pass: the points the figure draws
    fitted = pl.from_arrow(read_table(inputs.bandwidth))
    bandwidth = u_curve_bandwidth(fitted_knn_bandwidth(fitted), params.descriptor,
                                  params.bandwidth)
    marks = {}
    for path in inputs.new_task_distances:
        row = pl.from_arrow(read_table(path, ["task", "task_u"]))
        marks[row["task"][0]] = float(row["task_u"][0])
    models = top_models(pool.task_accuracy(), pool.models)
    logging.info("smoother curves of %d models, sigma = %g, %d new task(s) marked",
                 len(models), bandwidth, len(marks))
    save_png(smoother_figure(pairs, models, bandwidth, marks), snakemake.output[0])  # noqa: F821


run_logged(snakemake.log[0], main)  # noqa: F821
