"""Score a new task with score_task's own script, then write its ranking (Markdown)."""

import logging
import runpy
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821

import polars as pl

from llmrouter import ranking
from llmrouter.artifacts import read_table, write_text
from llmrouter.logs import run_logged
from llmrouter.store import read_neighbours
from llmrouter.tasks import given_accuracy

# The scores: exactly what score_task computes (it writes output[0] and logs to log[0]).
runpy.run_path(str(Path(snakemake.scriptdir) / "score_task.py"),  # noqa: F821
               init_globals={"snakemake": snakemake})  # noqa: F821


def main() -> None:
    task = snakemake.wildcards.task  # noqa: F821
    descriptor_k = snakemake.params.routing["descriptor_k"]  # noqa: F821
    scores = pl.from_arrow(read_table(snakemake.output.scores))  # noqa: F821
    prompts = pl.from_arrow(read_table(snakemake.input.prompts))  # noqa: F821
    _, neighbours = read_neighbours(snakemake.input.neighbours)  # noqa: F821
    datasets = pl.from_arrow(read_table(snakemake.input.pool, ["dataset"]).select(["dataset"]))  # noqa: F821
    datasets = sorted(datasets["dataset"].unique().to_list())
    pairs = pl.from_arrow(read_table(snakemake.input.pairs, ["heldout", "dataset", "u"]))  # noqa: F821
    benchmark_u = pairs.filter(pl.col("heldout").is_null()).unique("dataset")["u"].to_numpy()
    columns = ["task", "dataset", "distance"]
    row = pl.from_arrow(read_table(snakemake.input.task_distances, columns)).select(columns)  # noqa: F821
    matrix = pl.from_arrow(read_table(snakemake.input.benchmark_distances, columns)).select(columns)  # noqa: F821
    u = ranking.task_u(neighbours, descriptor_k)
    cover = ranking.coverage(u, benchmark_u, pl.concat([matrix, row]), task)
    given = given_accuracy(prompts)
    unknown = sorted(set(given) - set(scores["model"].to_list()))
    if unknown:
        logging.warning("%s: correctness column(s) %s name no benchmark model; ignored",
                        snakemake.input.prompts, unknown)  # noqa: F821
    table = ranking.ranking_table(scores, snakemake.params.costs, given)  # noqa: F821
    markdown = ranking.ranking_markdown(
        task, table, prompts.height, cover,
        ranking.neighbour_shares(neighbours, datasets, descriptor_k),
        ranking.nearest_by_distance(row, task), descriptor_k, snakemake.params.top,  # noqa: F821
    )
    write_text(markdown, snakemake.output.ranking)  # noqa: F821
    logging.info("%s: %d prompts, S3 pick %s, u = %.4f (benchmark max %.4f)%s", task,
                 prompts.height, ranking.pick_of(table, "S3"), u, cover.u_max,
                 "; FAR from the benchmark" if cover.far else "")


run_logged(snakemake.log.ranking, main)  # noqa: F821
