"""Download the files one HELM run needs and record the outcome (ok, missing, broken)."""

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821

from llmrouter.threads import bind_threads

bind_threads(snakemake.threads)  # noqa: F821  (before anything imports polars)

from llmrouter.artifacts import write_table
from llmrouter.helm.download import download_record, download_run, transfer_settings
from llmrouter.logs import run_logged


def main() -> None:
    params, wildcards = snakemake.params, snakemake.wildcards  # noqa: F821
    result = download_run(params.roots, wildcards.suite, wildcards.run, params.folder,
                          transfer_settings(snakemake.config["helm"]),  # noqa: F821
                          tuple(params.metrics))
    logging.info("%s", result.line())
    print(result.line(), file=sys.__stdout__, flush=True)
    record = download_record(result, params.folder, params.on_missing)
    write_table(record, snakemake.output[0])  # noqa: F821


run_logged(snakemake.log[0], main)  # noqa: F821
