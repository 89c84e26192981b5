"""Build the approximate neighbour index over the benchmark pool (knn.index: approximate)."""

import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821

from llmrouter.threads import bind_threads

bind_threads(snakemake.threads)  # noqa: F821  (before anything imports polars)

from llmrouter import ann, knn
from llmrouter.logs import run_logged
from llmrouter.store import pool_embeddings, read_pool, write_cells


def main() -> None:
    pool = read_pool(snakemake.input.pool, snakemake.input.models)  # noqa: F821
    paths = dict(zip(snakemake.params.datasets, snakemake.input.embeddings))  # noqa: F821
    vectors = knn.normalize(pool_embeddings(pool, paths))
    start = time.perf_counter()
    cells = ann.assign_cells(vectors, pool.dataset_of, snakemake.params.cell_size,  # noqa: F821
                             threads=snakemake.threads)  # noqa: F821
    logging.info("approximate index: %d pool rows in %d cells (one dataset each), %.1f s",
                 len(cells), int(cells.max()) + 1, time.perf_counter() - start)
    write_cells(pool, cells, snakemake.output[0])  # noqa: F821


run_logged(snakemake.log[0], main)  # noqa: F821
