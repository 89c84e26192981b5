"""Embed one dataset's distinct instances (through the content-addressed cache)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821

import polars as pl

from llmrouter.artifacts import read_table
from llmrouter.embedding import EmbeddingSettings, embed_texts
from llmrouter.logs import run_logged
from llmrouter.store import write_embeddings


def main() -> None:
    table = pl.from_arrow(read_table(snakemake.input[0], ["instance_id", "text"]))  # noqa: F821
    instances = table.select("instance_id", "text").unique("instance_id", maintain_order=True)
    settings = {k: v for k, v in snakemake.params.embedding.items() if k != "cache_dir"}  # noqa: F821
    vectors = embed_texts(
        instances["text"].to_list(),
        EmbeddingSettings(**settings),
        snakemake.params.cache_dir,  # noqa: F821
        threads=snakemake.threads,  # noqa: F821
    )
    write_embeddings(instances["instance_id"].to_list(), vectors, snakemake.output[0])  # noqa: F821


run_logged(snakemake.log[0], main)  # noqa: F821
