"""The evaluation summary (Table 1) as an HTML page for the report."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821

import polars as pl

from llmrouter.artifacts import read_table, write_text
from llmrouter.figures import summary_html
from llmrouter.logs import run_logged


def main() -> None:
    summary = pl.from_arrow(read_table(snakemake.input.summary))  # noqa: F821
    # The Markdown's closing sentence (S3 against BMA) completes the table.
    lines = [x for x in Path(snakemake.input.markdown).read_text().splitlines() if x.strip()]  # noqa: F821
    title = f"Leave-one-task-out evaluation ({snakemake.params.mode} mode)"  # noqa: F821
    write_text(summary_html(summary, title, lines[-1] if lines else ""), snakemake.output[0])  # noqa: F821


run_logged(snakemake.log[0], main)  # noqa: F821
