"""The accuracy-versus-cost frontier of cost-aware picks, as a table and a figure."""

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821

from llmrouter.threads import bind_threads

bind_threads(snakemake.threads)  # noqa: F821  (before anything imports polars)

import polars as pl

from llmrouter import cost
from llmrouter.artifacts import read_table, write_table
from llmrouter.logs import run_logged
from llmrouter.store import read_source_models


def main() -> None:
    opts = snakemake.params.cost  # noqa: F821
    inputs = snakemake.input  # noqa: F821
    cost.check_cost_models(opts["models"], read_source_models(inputs.models),
                           snakemake.params.named_models)  # noqa: F821
    scores = pl.concat([pl.from_arrow(read_table(p)) for p in inputs.scores])
    table = cost.frontier(scores, opts["models"], tuple(opts["epsilons"]))
    logging.info("frontier over %d tasks:\n%s", scores["task"].n_unique(), table)
    write_table(table, snakemake.output.table)  # noqa: F821
    cost.plot_frontier(table, snakemake.output.figure, opts["unit"])  # noqa: F821


run_logged(snakemake.log[0], main)  # noqa: F821
