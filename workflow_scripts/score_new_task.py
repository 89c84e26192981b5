"""Score every benchmark model on a new task (as score_task does), and write its ranking."""

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821

import polars as pl

from llmrouter import ranking
from llmrouter.artifacts import read_table, write_table, write_text
from llmrouter.logs import run_logged
from llmrouter.routing import RoutingParams
from llmrouter.task_artifacts import score_from_artifacts
from llmrouter.tasks import given_accuracy


def main() -> None:
    task = snakemake.wildcards.new_task  # noqa: F821
    params = RoutingParams(**snakemake.params.routing)  # noqa: F821
    inputs = snakemake.input  # noqa: F821
    scored = score_from_artifacts(task, params, pool=inputs.pool, models=inputs.models,
                                  neighbours=inputs.neighbours, pairs=inputs.pairs,
                                  bandwidth=inputs.bandwidth,
                                  task_distances=inputs.task_distances)
    scores, neighbours, pairs_table = scored.scores, scored.neighbours, scored.pairs_table

    prompts = pl.from_arrow(read_table(inputs.prompts))
    benchmark_u = (pairs_table.filter(pl.col("heldout").is_null()).unique("dataset")["u"]
                   .to_numpy())
    columns = ["task", "dataset", "distance"]
    row = pl.from_arrow(read_table(inputs.task_distances, columns)).select(columns)
    matrix = pl.from_arrow(read_table(inputs.benchmark_distances, columns)).select(columns)
    u = ranking.task_u(neighbours, params.descriptor_k)
    cover = ranking.coverage(u, benchmark_u, pl.concat([matrix, row]), task)
    given = given_accuracy(prompts)
    unknown = sorted(set(given) - set(scores["model"].to_list()))
    if unknown:
        logging.warning("%s: correctness column(s) %s name no benchmark model; ignored",
                        inputs.prompts, unknown)
    table = ranking.ranking_table(scores, snakemake.params.costs, given)  # noqa: F821
    markdown = ranking.ranking_markdown(
        task, table, prompts.height, cover,
        ranking.neighbour_shares(neighbours, scored.pool.datasets, params.descriptor_k),
        ranking.nearest_by_distance(row, task), params.descriptor_k,
        snakemake.params.top,  # noqa: F821
    )
    write_table(scores, snakemake.output.scores)  # noqa: F821
    write_text(markdown, snakemake.output.ranking)  # noqa: F821
    logging.info("%s: %d prompts, S3 pick %s, u = %.4f (benchmark max %.4f)%s", task,
                 prompts.height, ranking.pick_of(table, "S3"), u, cover.u_max,
                 "; FAR from the benchmark" if cover.far else "")


run_logged(snakemake.log[0], main)  # noqa: F821
