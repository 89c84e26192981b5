"""Score every benchmark model on a new task (as score_task does), and write its ranking."""

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821

from llmrouter.threads import bind_threads

bind_threads(snakemake.threads)  # noqa: F821  (before anything imports polars)

import polars as pl

from llmrouter import ranking
from llmrouter.artifacts import read_table, write_table, write_text
from llmrouter.cost import check_cost_models, model_costs
from llmrouter.embedding import EmbeddingSettings, count_cut
from llmrouter.logs import run_logged, warn
from llmrouter.routing import RoutingParams
from llmrouter.store import read_distances, read_source_models
from llmrouter.task_artifacts import score_from_artifacts


def main() -> None:
    task = snakemake.wildcards.new_task  # noqa: F821
    params = RoutingParams(**snakemake.params.routing)  # noqa: F821
    inputs = snakemake.input  # noqa: F821
    check_cost_models(snakemake.params.costs, read_source_models(inputs.models),  # noqa: F821
                      snakemake.params.named_models)  # noqa: F821
    scored = score_from_artifacts(task, params, pool=inputs.pool, models=inputs.models,
                                  neighbours=inputs.neighbours, pairs=inputs.pairs,
                                  bandwidth=inputs.bandwidth,
                                  task_distances=inputs.task_distances)
    if snakemake.params.costs:  # noqa: F821
        model_costs(scored.pool.models, snakemake.params.costs)  # noqa: F821
    prompts = pl.from_arrow(read_table(inputs.prompts))
    min_points = ranking.ot_min_points(scored.pool.dataset_sizes().tolist(),
                                       snakemake.params.max_points)  # noqa: F821
    # Tokens do not depend on the precision: float32 spares a conversion.
    embedding = EmbeddingSettings(**{**snakemake.params.embedding,  # noqa: F821
                                     "precision": "float32"})
    cut = count_cut(prompts["text"].to_list(), embedding)
    ranked = ranking.rank_new_task(
        task, scored.scores, scored.neighbours, scored.pairs_table, scored.pool.datasets, prompts,
        read_distances(inputs.task_distances), read_distances(inputs.distance_matrix),
        params.descriptor_k, snakemake.params.costs, snakemake.params.top,  # noqa: F821
        min_points, params.descriptor, params.fallback_share, params.draws,
        cut, embedding.max_seq_length,
    )
    if ranked.unknown:
        source, page = snakemake.params.task_file, snakemake.output.ranking  # noqa: F821
        warn(f"{source}: correctness column(s) {ranked.unknown} name no model scored here; "
             f"ignored (see {page})")
    if ranked.coverage.too_few_for_ot and params.descriptor == "ot":
        warn(f"{task}: {prompts.height} prompt(s), fewer than the {min_points} points of the "
             "smallest benchmark task: its p comes from their inflated OT distances "
             "(smoother.descriptor: ot)")
    write_table(scored.scores, snakemake.output.scores)  # noqa: F821
    write_text(ranked.markdown, snakemake.output.ranking)  # noqa: F821
    cover = ranked.coverage
    logging.info("%s: %d prompts (%d longer than %d tokens), S3 pick %s, u = %.4f (benchmark "
                 "max %.4f)%s", task, prompts.height, cut, embedding.max_seq_length,
                 ranking.pick_of(ranked.table, "S3"), cover.u, cover.u_max,
                 "; FAR from the benchmark" if cover.far else "")


run_logged(snakemake.log[0], main)  # noqa: F821
