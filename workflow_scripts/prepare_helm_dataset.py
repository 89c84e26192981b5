"""Turn one dataset's downloaded HELM runs into its correctness table."""

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821

from llmrouter.threads import bind_threads

bind_threads(snakemake.threads)  # noqa: F821  (before anything imports polars)

import polars as pl

from llmrouter.artifacts import write_table
from llmrouter.helm.convert import dataset_table
from llmrouter.helm.download import DOWNLOAD_COLUMNS
from llmrouter.helm.index import check_metric_scenarios, read_index
from llmrouter.logs import run_logged


def main() -> None:
    dataset = snakemake.wildcards.dataset  # noqa: F821
    metrics = snakemake.params.metrics  # noqa: F821
    if metrics:
        # The metrics are a param here, so an edit reruns this job: a key naming no scenario
        # of the index (a misspelt one would leave the default metric in place) stops it.
        check_metric_scenarios(metrics, read_index(snakemake.input.index,  # noqa: F821
                                                   snakemake.params.suite))  # noqa: F821
    records = [pl.read_parquet(p) for p in snakemake.input.downloads]  # noqa: F821
    downloads = pl.concat(records).cast(DOWNLOAD_COLUMNS)
    table, report, lines = dataset_table(dataset, downloads, metrics,
                                         snakemake.params.on_missing)  # noqa: F821
    for line in lines + report.lines():
        logging.info(line)
    write_table(table, snakemake.output[0])  # noqa: F821


run_logged(snakemake.log[0], main)  # noqa: F821
