"""Neighbour lists of one task's instances in the benchmark pool (one search for all models)."""

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821

from llmrouter.threads import bind_threads

bind_threads(snakemake.threads)  # noqa: F821  (before anything imports polars)

from llmrouter import knn
from llmrouter.logs import run_logged
from llmrouter.pool import check_neighbour_supply
from llmrouter.store import (
    pool_embeddings,
    read_cells,
    read_embeddings,
    read_pool,
    write_neighbours,
)
from llmrouter.task_search import task_neighbours


def main() -> None:
    task = snakemake.wildcards.task  # noqa: F821
    params = snakemake.params  # noqa: F821
    pool = read_pool(snakemake.input.pool, snakemake.input.models)  # noqa: F821
    # Only what this search needs: strict mode's nested pools are checked where the mode
    # matters (fit_smoother), so changing the mode does not rerun every search.
    check_neighbour_supply(pool, task, params.n_neighbours, strict=False)
    paths = dict(zip(params.datasets, snakemake.input.embeddings))  # noqa: F821
    vectors = knn.normalize(pool_embeddings(pool, paths))
    new_task = None if task in pool.datasets else read_embeddings(snakemake.input.queries)  # noqa: F821
    cells = (read_cells(snakemake.input.index, pool)  # noqa: F821
             if params.index == "approximate" else None)
    # Read from the config, not params: it sets memory use only, so changing it must not
    # rerun the searches (tests/test_knn.py: results are the same for any block size).
    block_size = snakemake.config["knn"]["block_size"]  # noqa: F821
    ids, neighbours = task_neighbours(task, pool, vectors, params.n_neighbours, new_task, cells,
                                      params.n_probe, block_size)
    logging.info("%s: %d queries x %d pool rows, %d neighbours kept each (%s)", task, len(ids),
                 len(vectors), neighbours.index.shape[1], params.index)
    write_neighbours(ids, neighbours, snakemake.output[0])  # noqa: F821


run_logged(snakemake.log[0], main)  # noqa: F821
