"""Fit the confidence smoother's pairs (u(d), acc(d, m)) by leaving each task out.

Always one leave-one-task-out pass (heldout = null, used by reference mode and new tasks);
in strict mode also, for each held-out task t, the pairs recomputed with t out of every pool.
"""

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821

from llmrouter.threads import bind_threads

bind_threads(snakemake.threads)  # noqa: F821  (before anything imports polars)

from llmrouter.artifacts import write_table
from llmrouter.logs import run_logged
from llmrouter.routing import RoutingParams, pairs_table, smoother_heldouts
from llmrouter.store import read_neighbours, read_pool


def main() -> None:
    params = RoutingParams(**snakemake.params.pairs)  # noqa: F821
    pool = read_pool(snakemake.input.pool, snakemake.input.models)  # noqa: F821
    neighbours = {}
    for path in snakemake.input.neighbours:  # noqa: F821
        neighbours[Path(path).stem] = read_neighbours(path)[1]
    heldouts = smoother_heldouts(pool.datasets, params.mode)
    table = pairs_table(pool, neighbours, params, heldouts)
    logging.info("smoother: %d sets of pairs over %d datasets x %d models (%s mode)",
                 len(heldouts), len(pool.datasets), len(pool.models), params.mode)
    write_table(table, snakemake.output[0])  # noqa: F821


run_logged(snakemake.log[0], main)  # noqa: F821
