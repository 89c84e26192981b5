"""Stack every dataset's correctness into the training pool and choose its models."""

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821

from llmrouter.threads import bind_threads

bind_threads(snakemake.threads)  # noqa: F821  (before anything imports polars)

import polars as pl

from llmrouter.artifacts import read_table
from llmrouter.logs import run_logged, warn
from llmrouter.pool import CONFIG_REASONS, build_pool, select_models
from llmrouter.store import write_pool


def main() -> None:
    tables = {}
    for path in snakemake.input:  # noqa: F821
        frame = pl.from_arrow(read_table(path, ["dataset", "instance_id", "model", "correct"]))
        tables[frame["dataset"][0]] = frame
    present = {name: set(frame["model"].unique().to_list()) for name, frame in tables.items()}
    models, dropped = select_models(
        present, snakemake.params.include, snakemake.params.exclude  # noqa: F821
    )
    for model, reason in dropped.items():
        # On the terminal unless config asked for it: the model vanishes from every ranking.
        (logging.info if reason in CONFIG_REASONS else warn)(f"model {model} dropped: {reason}")
    pool, lost = build_pool(tables, models)
    for name, count in lost.items():
        if count:
            warn(f"{name}: dropped {count} instance(s) lacking a kept model's result")
    if len(pool.models) < 2:
        warn(f"pool: {len(pool.models)} model ({pool.models[0]}): there is no other model to "
             "route to (models.include / models.exclude; every dropped model is in the log)")
    logging.info("pool: %d datasets, %d instances, %d models", len(pool.datasets),
                 len(pool.instance_ids), len(pool.models))
    write_pool(pool, snakemake.output.correctness, snakemake.output.models, dropped)  # noqa: F821


run_logged(snakemake.log[0], main)  # noqa: F821
