"""Select HELM runs from the index: the run list that decides which datasets exist."""

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821

from llmrouter.threads import bind_threads

bind_threads(snakemake.threads)  # noqa: F821  (before anything imports polars)

from llmrouter.artifacts import InputError, write_table
from llmrouter.helm.index import check_metric_scenarios, read_index, select_runs
from llmrouter.logs import run_logged


def main() -> None:
    params = snakemake.params  # noqa: F821
    path = snakemake.input[0]  # noqa: F821
    index = read_index(path, params.suite)
    # From the config, not a param: the check changes no output, while a changed param would
    # rerun this checkpoint and the jobs that depend on it. prepare_helm_dataset, which the
    # metrics do rerun, checks them again after an edit.
    check_metric_scenarios(snakemake.config["helm"].get("metrics"), index)  # noqa: F821
    runs, left_out = select_runs(index, params.include, params.exclude, params.models)
    for run, why in left_out.items():
        logging.warning("%s: left out (%s)", run, why)
    if runs.height == 0:
        raise InputError(f"{path}: no HELM run matches helm.runs and helm.models "
                         f"({len(index)} runs in the index)")
    logging.info("%d of %d runs selected: %d datasets x %d models", runs.height, len(index),
                 runs["dataset"].n_unique(), runs["model_slug"].n_unique())
    write_table(runs, snakemake.output[0])  # noqa: F821


run_logged(snakemake.log[0], main)  # noqa: F821
