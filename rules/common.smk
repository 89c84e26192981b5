import re
import sys
from pathlib import Path

sys.path.insert(0, workflow.basedir)

from llmrouter.bandwidth import DEFAULT_GRID as DEFAULT_BANDWIDTH_GRID
from llmrouter.benchmark import list_datasets
from llmrouter.cost import DEFAULT_EPSILONS
from llmrouter.smoother import PAPER_BANDWIDTH
from llmrouter.tasks import check_task_names, find_task_files

RESULTS = config.get("results", "results")
RESOURCES = config.get("resources_dir", "resources")
CONDA_ENV = "../envs/routing.yaml"


def benchmark_datasets():
    """Benchmark datasets (one held-out task each), known when the DAG is built."""
    if config["source"] == "table":
        return list_datasets(config["table"]["path"])
    if config["source"] == "helm":
        return []  # decided by the checkpoint select_helm_runs: see dataset_names()
    raise ValueError(f"unknown source {config['source']!r}")


def new_task_files():
    """A user's new tasks (llmrouter/tasks.py): name -> prompt file, from `new_tasks`."""
    settings = config.get("new_tasks", {})
    found = find_task_files(settings.get("folder", "tasks"), settings.get("files", {}))
    return {name: str(path) for name, path in found.items()}


DATASETS = benchmark_datasets()
NEW_TASKS = new_task_files()
check_task_names(list(NEW_TASKS), DATASETS)
TASKS = DATASETS + list(NEW_TASKS)


def name_constraint(names):
    """Wildcard constraint: exactly `names`, or with source helm (names known only after
    the checkpoint) any filename-safe name as llmrouter.helm.index.dataset_name writes it.
    """
    if config["source"] == "helm":
        return r"[A-Za-z0-9][A-Za-z0-9_.\-]*"
    return "|".join(re.escape(n) for n in names)


def new_task_constraint():
    """Wildcard constraint matching exactly the new tasks' names (nothing when there are none)."""
    return "|".join(re.escape(t) for t in NEW_TASKS) or "(?!)"


wildcard_constraints:
    dataset=name_constraint(DATASETS),
    task=name_constraint(TASKS),
    new_task=new_task_constraint(),


def helm_run_folder(wildcards):
    """Where one HELM run's files are downloaded (resources/helm/<project>/runs/<suite>/<run>)."""
    project = config["helm"]["project"]
    return f"{RESOURCES}/helm/{project}/runs/{wildcards.suite}/{wildcards.run}"


def helm_run_list(wildcards=None):
    """The selected HELM runs (checkpoint select_helm_runs): run, suite, dataset, ..."""
    import polars as pl

    return pl.read_parquet(checkpoints.select_helm_runs.get().output[0])


def dataset_names(wildcards=None):
    """Benchmark datasets: the table's, or with source helm the checkpoint's run list."""
    if config["source"] == "helm":
        return sorted(helm_run_list()["dataset"].unique().to_list())
    return DATASETS


def helm_download_record(run, suite):
    """Where the download record of one HELM run goes (the run name kept as HELM writes it)."""
    return f"{RESULTS}/helm/downloads/{suite}/{run}.parquet"


def helm_dataset_downloads(wildcards):
    """Download records of every selected run of one dataset."""
    runs = helm_run_list().filter(dataset=wildcards.dataset)
    return [helm_download_record(r, s) for r, s in zip(runs["run"], runs["suite"])]


def helm_downloads(wildcards=None):
    """Download records of every selected HELM run."""
    runs = helm_run_list()
    return [helm_download_record(r, s) for r, s in zip(runs["run"], runs["suite"])]


def benchmark_tables(wildcards=None):
    """Every dataset's correctness table."""
    return expand(f"{RESULTS}/benchmark/{{dataset}}.parquet", dataset=dataset_names())


def embedding_settings():
    """The config's embedding settings (llmrouter.embedding.EmbeddingSettings), without the
    cache folder."""
    return {k: v for k, v in config.get("embedding", {}).items() if k != "cache_dir"}


def embedding_cache_dir():
    """Where embeddings are cached: embedding.cache_dir, else under resources_dir."""
    return config.get("embedding", {}).get("cache_dir", f"{RESOURCES}/embedding_cache")


def embedding_files(wildcards=None):
    """Every benchmark dataset's embeddings."""
    return expand(f"{RESULTS}/embeddings/{{dataset}}.parquet", dataset=dataset_names())


def neighbour_files(wildcards=None):
    """Every benchmark dataset's neighbour lists."""
    return expand(f"{RESULTS}/neighbours/{{task}}.parquet", task=dataset_names())


def score_files(wildcards=None):
    """Scores of every held-out benchmark task."""
    return expand(f"{RESULTS}/scores/{{task}}.parquet", task=dataset_names())


def new_task_file(wildcards):
    """The prompt file of one new task."""
    return NEW_TASKS[wildcards.new_task]


def score_new_task_inputs(wildcards):
    """score_task's inputs (score_new_task runs score_task's script for the scores) and the
    ranking's: the task's prompts, its OT distance row and the benchmark's distance matrix.
    """
    check_task_names(list(NEW_TASKS), dataset_names())
    inputs = {
        name: item(wildcards) if callable(item) else item.format(**wildcards)
        for name, item in rules.score_task.input.items()
    }
    return inputs | {
        "prompts": f"{RESULTS}/tasks/{wildcards.task}.parquet",
        "task_distances": f"{RESULTS}/distances/{wildcards.task}.parquet",
        "benchmark_distances": f"{RESULTS}/distances.parquet",
    }


def new_task_rankings(wildcards=None):
    """Scores and ranking of every new task."""
    return expand(
        f"{RESULTS}/scores/{{task}}.{{ext}}",
        task=list(NEW_TASKS),
        ext=["parquet", "md"],
    )


def ann_index_input(wildcards):
    """The approximate index, when knn.index is approximate (else no extra input)."""
    if config.get("knn", {}).get("index", "exact") == "approximate":
        return {"index": f"{RESULTS}/knn/ann_index.parquet"}
    return {}


def task_embeddings(wildcards):
    """Embeddings of the task whose neighbours are searched."""
    return f"{RESULTS}/embeddings/{wildcards.task}.parquet"


def routing_params():
    """The method's settings, passed to scripts as params so a change reruns the jobs."""
    return {
        "k": config.get("knn", {}).get("k", 5),
        "descriptor_k": config.get("smoother", {}).get("descriptor_k", 19),
        "threshold": config.get("selection", {}).get("threshold", 0.5),
        "bandwidth": config.get("smoother", {}).get("bandwidth", PAPER_BANDWIDTH),
        "fallback_share": config.get("selection", {}).get("fallback_share", 0.6),
        "draws": config.get("selection", {}).get("draws", 1000),
        "seed": config.get("selection", {}).get("seed", 0),
        "mode": config.get("evaluation", {}).get("mode", "strict"),
        "descriptor": config.get("smoother", {}).get("descriptor", "knn"),
    }


def distance_params():
    """How task distances are computed (OT between subsampled embedding clouds)."""
    distances = config.get("distances", {})
    return {
        "max_points": distances.get("max_points", 500),
        "method": distances.get("method", "emd"),
        "reg": distances.get("reg", 0.05),
        "seed": distances.get("seed", 0),
    }


def bandwidth_grid():
    """Candidate bandwidths of `smoother.bandwidth: auto` (config, else the library's)."""
    return config.get("smoother", {}).get("bandwidth_grid") or list(
        DEFAULT_BANDWIDTH_GRID
    )


def cost_params():
    """Per-model costs and the epsilons of cost-aware picks (results/report/frontier.*)."""
    settings = config.get("cost", {})
    return {
        "models": settings.get("models", {}),
        "epsilons": settings.get("epsilons", list(DEFAULT_EPSILONS)),
        "unit": settings.get("unit", "cost"),
    }


def cost_outputs():
    """The frontier, built when config gives per-model costs."""
    if not cost_params()["models"]:
        return []
    return [f"{RESULTS}/report/frontier.parquet", f"{RESULTS}/report/frontier.png"]


def ablation_params():
    """Settings of the ablation (results/report/ablation.md)."""
    settings = config.get("ablation", {})
    return {
        "alphas": settings.get("alphas", [0.04, 0.1]),
        "repeats": settings.get("repeats", 3),
    }


def distance_rows(wildcards=None):
    """Every task's row of the distance matrix."""
    return expand(f"{RESULTS}/distances/{{task}}.parquet", task=dataset_names())


def task_distance_row(wildcards):
    """The scored task's OT distances, needed only by the `ot` descriptor."""
    if routing_params()["descriptor"] != "ot":
        return []
    return f"{RESULTS}/distances/{wildcards.task}.parquet"


def bandwidth_distances(wildcards=None):
    """The whole distance matrix, needed to fit the bandwidth of the `ot` descriptor."""
    if routing_params()["descriptor"] != "ot":
        return []
    return f"{RESULTS}/distances.parquet"


def new_task_distance_rows(wildcards=None):
    """The new tasks' rows of the distance matrix (task, dataset, distance, task_u)."""
    return expand(f"{RESULTS}/distances/{{task}}.parquet", task=list(NEW_TASKS))


def distance_figure_inputs(wildcards=None):
    """The benchmark's distance matrix and the new tasks' rows, for the heatmap."""
    return [f"{RESULTS}/distances.parquet"] + new_task_distance_rows()


def report_figures(wildcards=None):
    """Every figure (and the summary page) of `snakemake --report` (the cost frontier is in
    cost_outputs)."""
    figures = f"{RESULTS}/report/figures"
    outputs = [
        f"{RESULTS}/report/summary.html",
        f"{figures}/picks_vs_oracle.png",
        f"{figures}/smoother_curves.png",
        f"{figures}/task_distances.png",
    ]
    return outputs + expand(f"{figures}/ranking_{{task}}.png", task=list(NEW_TASKS))


def all_outputs(wildcards=None):
    """What `snakemake` with no target builds."""
    helm_report = (
        [f"{RESULTS}/helm/missing_runs.tsv"] if config["source"] == "helm" else []
    )
    return (
        score_files()
        + new_task_rankings()
        + report_figures()
        + helm_report
        + [
            f"{RESULTS}/distances.parquet",
            f"{RESULTS}/smoother/bandwidth.parquet",
            f"{RESULTS}/report/ablation.md",
            *cost_outputs(),
            f"{RESULTS}/report/picks.parquet",
            f"{RESULTS}/report/summary.parquet",
            f"{RESULTS}/report/summary.md",
        ]
    )
