"""Neighbour lists of one task's instances in the benchmark pool (one search for all models)."""

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821

from llmrouter import ann, knn
from llmrouter.logs import run_logged
from llmrouter.store import (
    pool_embeddings,
    read_cells,
    read_embeddings,
    read_pool,
    write_neighbours,
)


def main() -> None:
    task = snakemake.wildcards.task  # noqa: F821
    pool = read_pool(snakemake.input.pool, snakemake.input.models)  # noqa: F821
    paths = dict(zip(snakemake.params.datasets, snakemake.input.embeddings))  # noqa: F821
    vectors = knn.normalize(pool_embeddings(pool, paths))
    query_rows = None
    if task in pool.datasets:
        # A held-out benchmark task: its queries are its pool rows, its own dataset excluded.
        query_rows = pool.rows(task)
        ids, queries = pool.instance_ids[query_rows], vectors[query_rows]
        own = pool.datasets.index(task)
    else:
        ids, queries = read_embeddings(snakemake.input.queries)  # noqa: F821
        queries, own = knn.normalize(queries), None
    if snakemake.params.index == "approximate":  # noqa: F821
        cells = read_cells(snakemake.input.index, pool)  # noqa: F821
        index = ann.make_index(vectors, pool.dataset_of, cells)
        neighbours = ann.search(index, queries, snakemake.params.k,  # noqa: F821
                                exclude_dataset=own, n_probe=snakemake.params.n_probe,  # noqa: F821
                                query_cells=None if query_rows is None else cells[query_rows])
    else:
        neighbours = knn.search(queries, vectors, pool.dataset_of, snakemake.params.k,  # noqa: F821
                                exclude_dataset=own, block_size=snakemake.params.block_size)  # noqa: F821
    logging.info("%s: %d queries x %d pool rows, %d neighbours kept each", task, len(ids),
                 len(vectors), neighbours.index.shape[1])
    write_neighbours(ids, neighbours, snakemake.output[0])  # noqa: F821


run_logged(snakemake.log[0], main)  # noqa: F821
