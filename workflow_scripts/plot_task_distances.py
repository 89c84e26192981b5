"""Figure: heatmap of the task distance matrix (benchmark tasks, then new tasks)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821

from llmrouter.threads import bind_threads

bind_threads(snakemake.threads)  # noqa: F821  (before anything imports polars)

from llmrouter.figures import distance_figure, save_png
from llmrouter.logs import run_logged
from llmrouter.store import read_distances


def main() -> None:
    inputs = snakemake.input  # noqa: F821
    table = read_distances(inputs.distance_matrix, *inputs.new_task_distances)
    save_png(distance_figure(table.unique(["task", "dataset"])), snakemake.output[0])  # noqa: F821


run_logged(snakemake.log[0], main)  # noqa: F821
