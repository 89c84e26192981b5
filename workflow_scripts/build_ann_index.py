"""Build the approximate neighbour index over the benchmark pool (knn.index: approximate)."""

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821

from llmrouter import ann, knn
from llmrouter.logs import run_logged
from llmrouter.store import pool_embeddings, read_pool


def main() -> None:
    pool = read_pool(snakemake.input.pool, snakemake.input.models)  # noqa: F821
    paths = dict(zip(snakemake.params.datasets, snakemake.input.embeddings))  # noqa: F821
    vectors = knn.normalize(pool_embeddings(pool, paths))
    index = ann.build_index(vectors, n_lists=snakemake.params.n_lists,  # noqa: F821
                            threads=snakemake.threads)  # noqa: F821
    logging.info("IVF index: %d pool rows in %d cells", index.ntotal, index.nlist)
    ann.write_index(index, snakemake.output[0])  # noqa: F821


run_logged(snakemake.log[0], main)  # noqa: F821
