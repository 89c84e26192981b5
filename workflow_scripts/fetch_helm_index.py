"""Download the HELM index (a release's runs_to_run_suites.json or a suite's run_specs.json)."""

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821

from llmrouter.threads import bind_threads

bind_threads(snakemake.threads)  # noqa: F821  (before anything imports polars)

from llmrouter.helm.download import fetch_index, transfer_settings
from llmrouter.logs import run_logged


def main() -> None:
    params = snakemake.params  # noqa: F821
    path = fetch_index(params.roots, params.release, params.suite,
                       Path(snakemake.output[0]),  # noqa: F821
                       transfer_settings(snakemake.config["helm"]))  # noqa: F821
    logging.info("HELM index saved to %s", path)


run_logged(snakemake.log[0], main)  # noqa: F821
