"""Score every benchmark model on one task: S1, S2, p, S3, and the picks."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821

import polars as pl

from llmrouter.artifacts import read_table, write_table
from llmrouter.logs import run_logged
from llmrouter.routing import RoutingParams, task_scores
from llmrouter.store import read_neighbours, read_ot_row, read_pool


def main() -> None:
    task = snakemake.wildcards.task  # noqa: F821
    params = RoutingParams(**snakemake.params.routing)  # noqa: F821
    pool = read_pool(snakemake.input.pool, snakemake.input.models)  # noqa: F821
    _, neighbours = read_neighbours(snakemake.input.neighbours)  # noqa: F821
    pairs_table = pl.from_arrow(read_table(snakemake.input.pairs))  # noqa: F821
    fitted = pl.from_arrow(read_table(snakemake.input.bandwidth))  # noqa: F821
    ot_row = (read_ot_row(snakemake.input.distances, task)  # noqa: F821
              if params.descriptor == "ot" else None)
    frame = task_scores(task, neighbours, pool, pairs_table, params, fitted, ot_row)
    write_table(frame, snakemake.output[0])  # noqa: F821


run_logged(snakemake.log[0], main)  # noqa: F821
