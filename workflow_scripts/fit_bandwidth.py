"""The smoother's bandwidth per scored task (fixed or chosen by leave-one-task-out error;
NaN for the `agreement` descriptor, which has none: its error on the pairs is still reported)."""

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821

from llmrouter.threads import bind_threads

bind_threads(snakemake.threads)  # noqa: F821  (before anything imports polars)

import polars as pl

from llmrouter import bandwidth
from llmrouter.artifacts import read_table, write_table
from llmrouter.logs import run_logged
from llmrouter.store import read_ot_matrix, read_pool


def main() -> None:
    opts = snakemake.params  # noqa: F821
    pool = read_pool(snakemake.input.pool, snakemake.input.models)  # noqa: F821
    pairs_table = pl.from_arrow(read_table(snakemake.input.pairs))  # noqa: F821
    ot_matrix = None
    if opts.descriptor == "ot":
        ot_matrix = read_ot_matrix(snakemake.input.distance_matrix)  # noqa: F821
    table = bandwidth.fit_bandwidths(pairs_table, pool.models, pool.datasets, opts.mode,
                                     opts.descriptor, opts.bandwidth, tuple(opts.grid),
                                     ot_matrix)
    logging.info("bandwidth (%s, %s): median %.4f, leave-one-task-out error median %.4f",
                 opts.descriptor, opts.bandwidth, table["bandwidth"].median(),
                 table["loo_error"].median())
    write_table(table, snakemake.output[0])  # noqa: F821


run_logged(snakemake.log[0], main)  # noqa: F821
