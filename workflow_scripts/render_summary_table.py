"""The evaluation summary (Table 1) as an HTML page for the report."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821

from llmrouter.threads import bind_threads

bind_threads(snakemake.threads)  # noqa: F821  (before anything imports polars)

import polars as pl

from llmrouter import evaluation
from llmrouter.artifacts import read_table, write_text
from llmrouter.figures import summary_html
from llmrouter.logs import run_logged


def main() -> None:
    summary = pl.from_arrow(read_table(snakemake.input.summary))  # noqa: F821
    picks = pl.from_arrow(read_table(snakemake.input.picks))  # noqa: F821
    title = evaluation.summary_title(snakemake.params.mode)  # noqa: F821
    sentence = evaluation.versus_sentence(evaluation.s3_versus_bma(picks))
    write_text(summary_html(summary, title, sentence), snakemake.output[0])  # noqa: F821


run_logged(snakemake.log[0], main)  # noqa: F821
