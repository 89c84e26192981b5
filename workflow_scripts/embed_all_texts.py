"""Embed every benchmark text missing from the content-addressed cache, in one job.

One process loads the embedding model once for all datasets (importing torch alone takes
seconds); the per-dataset embed_dataset jobs then only read the cache.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821

from llmrouter.threads import bind_threads

bind_threads(snakemake.threads)  # noqa: F821  (before anything imports polars)

import polars as pl

from llmrouter.artifacts import read_table, write_table
from llmrouter.embedding import (INDEX_TEXT_COLUMNS, EmbeddingSettings, cache_root, embed_texts,
                                 embedding_index, index_texts)
from llmrouter.logs import run_logged, terminal


def main() -> None:
    texts = index_texts(pl.from_arrow(read_table(path, INDEX_TEXT_COLUMNS))
                        for path in snakemake.input)  # noqa: F821
    settings = EmbeddingSettings(**snakemake.params.embedding)  # noqa: F821
    embed_texts(texts["text"].unique(maintain_order=True).to_list(), settings,
                cache_root(snakemake.config), threads=snakemake.threads,  # noqa: F821
                progress_to=terminal())
    write_table(embedding_index(texts, settings), snakemake.output[0])  # noqa: F821


run_logged(snakemake.log[0], main)  # noqa: F821
