import re
import sys
from pathlib import Path

sys.path.insert(0, workflow.basedir)

from llmrouter.benchmark import list_datasets

RESULTS = config.get("results", "results")
RESOURCES = config.get("resources_dir", "resources")
CONDA_ENV = "../envs/routing.yaml"


def benchmark_datasets():
    """Benchmark datasets (one held-out task each), known when the DAG is built."""
    if config["source"] == "table":
        return list_datasets(config["table"]["path"])
    raise ValueError(f"unknown source {config['source']!r}")


DATASETS = benchmark_datasets()
TASKS = DATASETS


wildcard_constraints:
    dataset="|".join(re.escape(d) for d in DATASETS),
    task="|".join(re.escape(t) for t in TASKS),


def benchmark_tables(wildcards=None):
    """Every dataset's correctness table."""
    return expand(f"{RESULTS}/benchmark/{{dataset}}.parquet", dataset=DATASETS)


def embedding_files(wildcards=None):
    """Every benchmark dataset's embeddings."""
    return expand(f"{RESULTS}/embeddings/{{dataset}}.parquet", dataset=DATASETS)


def neighbour_files(wildcards=None):
    """Every benchmark dataset's neighbour lists."""
    return expand(f"{RESULTS}/neighbours/{{task}}.parquet", task=DATASETS)


def score_files(wildcards=None):
    """Scores of every held-out benchmark task."""
    return expand(f"{RESULTS}/scores/{{task}}.parquet", task=DATASETS)


def task_embeddings(wildcards):
    """Embeddings of the task whose neighbours are searched."""
    return f"{RESULTS}/embeddings/{wildcards.task}.parquet"


def routing_params():
    """The method's settings, passed to scripts as params so a change reruns the jobs."""
    return {
        "k": config.get("knn", {}).get("k", 5),
        "descriptor_k": config.get("smoother", {}).get("descriptor_k", 19),
        "threshold": config.get("selection", {}).get("threshold", 0.5),
        "bandwidth": config.get("smoother", {}).get("bandwidth", 0.09),
        "fallback_share": config.get("selection", {}).get("fallback_share", 0.6),
        "draws": config.get("selection", {}).get("draws", 1000),
        "seed": config.get("selection", {}).get("seed", 0),
        "mode": config.get("evaluation", {}).get("mode", "strict"),
    }


def all_outputs(wildcards=None):
    """What `snakemake` with no target builds."""
    return score_files() + [
        f"{RESULTS}/report/picks.parquet",
        f"{RESULTS}/report/summary.parquet",
        f"{RESULTS}/report/summary.md",
    ]
