"""Read a user's task file (jsonl/csv/txt prompts) into results/tasks/{new_task}.parquet."""

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821

from llmrouter.threads import bind_threads

bind_threads(snakemake.threads)  # noqa: F821  (before anything imports polars)

from llmrouter.artifacts import write_table
from llmrouter.logs import run_logged
from llmrouter.tasks import correctness_columns, read_task_file


def main() -> None:
    # The config key names the task (new_tasks.files), not the file, which may be any name.
    task = snakemake.wildcards.new_task  # noqa: F821
    table, notes = read_task_file(snakemake.input[0], task)  # noqa: F821
    for note in notes:
        logging.warning(note)
    models = correctness_columns(table)
    logging.info("%s: %d prompts%s", task, table.height,
                 f", correctness given for {len(models)} model(s)" if models else "")
    write_table(table, snakemake.output[0])  # noqa: F821


run_logged(snakemake.log[0], main)  # noqa: F821
