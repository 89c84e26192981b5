"""The ablation table: every variant of the method scored in-process on the benchmark."""

import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821

from llmrouter.threads import bind_threads

bind_threads(snakemake.threads)  # noqa: F821  (before anything imports polars)

from llmrouter import ablation, knn
from llmrouter.artifacts import write_table, write_text
from llmrouter.logs import run_logged, terminal
from llmrouter.routing import RoutingParams
from llmrouter.store import pool_embeddings, read_neighbours, read_ot_matrix, read_pool


def main() -> None:
    params = RoutingParams(**snakemake.params.routing)  # noqa: F821
    opts = snakemake.params.ablation  # noqa: F821
    pool = read_pool(snakemake.input.pool, snakemake.input.models)  # noqa: F821
    neighbours = {Path(p).stem: read_neighbours(p)[1]
                  for p in snakemake.input.neighbours}  # noqa: F821
    paths = dict(zip(snakemake.params.datasets, snakemake.input.embeddings))  # noqa: F821
    start = time.perf_counter()
    variants = ablation.default_variants(tuple(opts["alphas"]))
    inputs = ablation.Inputs(pool, neighbours, ablation.all_pairs(pool, neighbours, params),
                             read_ot_matrix(snakemake.input.distance_matrix),  # noqa: F821
                             knn.normalize(pool_embeddings(pool, paths)))
    logging.info("pairs of both modes: %.1f s", time.perf_counter() - start)
    table, scores = ablation.ablation_table(inputs, variants, params, opts["repeats"],
                                            tuple(snakemake.params.grid))  # noqa: F821
    summary = (f"ablation: {len(variants)} variants on {len(pool.datasets)} tasks in "
               f"{time.perf_counter() - start:.1f} s")
    logging.info("%s", summary)
    print(summary, file=terminal(), flush=True)  # as the embedding's summary
    notes = ablation.ablation_notes(len(pool.datasets), len(pool.models), opts["repeats"])
    write_table(table, snakemake.output.table)  # noqa: F821
    write_table(scores, snakemake.output.scores)  # noqa: F821
    write_text(ablation.ablation_markdown(table, "Ablation (leave-one-task-out)", notes),
               snakemake.output.markdown)  # noqa: F821


run_logged(snakemake.log[0], main)  # noqa: F821
