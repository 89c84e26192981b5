"""One task's row of the distance matrix: OT distance to every benchmark task, and its u."""

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821

from llmrouter.threads import bind_threads

bind_threads(snakemake.threads)  # noqa: F821  (before anything imports polars)

from llmrouter import distances, knn
from llmrouter.artifacts import write_table
from llmrouter.logs import run_logged
from llmrouter.routing import task_descriptor
from llmrouter.store import read_embeddings, read_neighbours, read_pool


def main() -> None:
    task = snakemake.wildcards.task  # noqa: F821
    opts = snakemake.params.distances  # noqa: F821
    pool = read_pool(snakemake.input.pool, snakemake.input.models)  # noqa: F821
    paths = dict(zip(snakemake.params.datasets, snakemake.input.embeddings))  # noqa: F821
    clouds = distances.read_task_clouds(pool, paths, opts["max_points"], opts["seed"])
    if task in pool.datasets:
        target = clouds[task]
    else:
        _, queries = read_embeddings(snakemake.input.queries)  # noqa: F821
        target = distances.subsample(knn.normalize(queries), opts["max_points"], opts["seed"],
                                     task)
    row = distances.distance_row(target, clouds, opts["method"], opts["reg"])
    _, neighbours = read_neighbours(snakemake.input.neighbours)  # noqa: F821
    u = task_descriptor(neighbours, snakemake.params.descriptor_k)  # noqa: F821
    logging.info("%s: %s distances to %d tasks on <= %d points each; u = %.4f", task,
                 opts["method"], len(row), opts["max_points"], u)
    write_table(distances.row_frame(task, row, u), snakemake.output[0])  # noqa: F821


run_logged(snakemake.log[0], main)  # noqa: F821
