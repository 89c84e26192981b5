"""Embed one dataset's distinct instances (through the content-addressed cache), with the
setting embed_all_texts recorded for the benchmark texts."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821

from llmrouter.threads import bind_threads

bind_threads(snakemake.threads)  # noqa: F821  (before anything imports polars)

import polars as pl

from llmrouter.artifacts import read_table
from llmrouter.embedding import cache_root, embed_texts, settings_of_index
from llmrouter.logs import run_logged, terminal
from llmrouter.store import write_embeddings


def main() -> None:
    table = pl.from_arrow(read_table(snakemake.input.table, ["instance_id", "text"]))  # noqa: F821
    instances = table.select("instance_id", "text").unique("instance_id", maintain_order=True)
    index = snakemake.input.index  # noqa: F821
    recorded = pl.from_arrow(read_table(index, ["setting"]))["setting"].unique().to_list()
    vectors = embed_texts(
        instances["text"].to_list(),
        settings_of_index(snakemake.params.embedding, recorded, index),  # noqa: F821
        cache_root(snakemake.config),  # noqa: F821
        threads=snakemake.threads,  # noqa: F821
        progress_to=terminal(),
    )
    write_embeddings(instances["instance_id"].to_list(), vectors, snakemake.output[0])  # noqa: F821


run_logged(snakemake.log[0], main)  # noqa: F821
