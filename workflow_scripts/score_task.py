"""Score every benchmark model on one task: S1, S2, p, S3, and the picks."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821

from llmrouter.threads import bind_threads

bind_threads(snakemake.threads)  # noqa: F821  (before anything imports polars)

from llmrouter.artifacts import write_table
from llmrouter.logs import run_logged
from llmrouter.routing import RoutingParams
from llmrouter.task_artifacts import score_from_artifacts


def main() -> None:
    params = RoutingParams(**snakemake.params.routing)  # noqa: F821
    inputs = snakemake.input  # noqa: F821
    scored = score_from_artifacts(snakemake.wildcards.task, params, pool=inputs.pool,  # noqa: F821
                                  models=inputs.models, neighbours=inputs.neighbours,
                                  pairs=inputs.pairs, bandwidth=inputs.bandwidth,
                                  task_distances=inputs.task_distances)
    write_table(scored.scores, snakemake.output[0])  # noqa: F821


run_logged(snakemake.log[0], main)  # noqa: F821
