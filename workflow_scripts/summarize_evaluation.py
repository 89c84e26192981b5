"""The leave-one-task-out evaluation table (the paper's Table 1) from every task's scores."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821

from llmrouter.threads import bind_threads

bind_threads(snakemake.threads)  # noqa: F821  (before anything imports polars)

import polars as pl

from llmrouter import evaluation
from llmrouter.artifacts import read_table, write_table, write_text
from llmrouter.cost import check_cost_models
from llmrouter.logs import run_logged
from llmrouter.store import read_source_models


def main() -> None:
    inputs = snakemake.input  # noqa: F821
    costs = dict(snakemake.params.costs)  # noqa: F821
    check_cost_models(costs, read_source_models(inputs.models),
                      snakemake.params.named_models)  # noqa: F821
    scores = pl.concat([pl.from_arrow(read_table(p)) for p in inputs.scores])
    picked = evaluation.picks(scores)
    table = evaluation.summary(scores, costs or None)
    versus = evaluation.s3_versus_bma(picked)
    title = evaluation.summary_title(snakemake.params.mode)  # noqa: F821
    write_table(picked, snakemake.output.picks)  # noqa: F821
    write_table(table, snakemake.output.summary)  # noqa: F821
    write_text(evaluation.summary_markdown(table, versus, title), snakemake.output.markdown)  # noqa: F821


run_logged(snakemake.log[0], main)  # noqa: F821
