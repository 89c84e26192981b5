"""Download the files one HELM run needs and record the outcome (ok, missing, broken)."""

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821

import polars as pl

from llmrouter.artifacts import InputError, write_table
from llmrouter.helm.convert import DOWNLOAD_COLUMNS
from llmrouter.helm.download import Transfer, download_run
from llmrouter.logs import run_logged


def main() -> None:
    params, wildcards = snakemake.params, snakemake.wildcards  # noqa: F821
    result = download_run(params.roots, wildcards.suite, wildcards.run, params.folder,
                          Transfer(**params.transfer))
    logging.info("%s", result.line())
    print(result.line(), file=sys.__stdout__, flush=True)
    if result.status != "ok" and params.on_missing == "fail":
        raise InputError(f"HELM run {wildcards.run} is {result.status} ({result.reason}); "
                         "helm.on_missing: skip would skip it, helm.runs.exclude leaves it out")
    record = {"run": result.run, "suite": result.suite, "status": result.status,
              "folder": str(params.folder), "files": result.files, "reason": result.reason,
              "requests": result.stats.requests, "retries": result.stats.retries,
              "bytes": result.stats.bytes, "cached": result.stats.cached,
              "seconds": result.seconds}
    write_table(pl.DataFrame([record], schema=DOWNLOAD_COLUMNS), snakemake.output[0])  # noqa: F821


run_logged(snakemake.log[0], main)  # noqa: F821
