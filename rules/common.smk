import os
import re
import sys
from pathlib import Path

# llmrouter is importable: the Snakefile puts workflow.basedir on sys.path before any include.
from llmrouter.bandwidth import DEFAULT_GRID as DEFAULT_BANDWIDTH_GRID
from llmrouter.benchmark import list_datasets
from llmrouter.embedding import cache_root, embedding_params
from llmrouter.helm.index import metric_candidates, parse_run_name
from llmrouter.smoother import configured_bandwidth
from llmrouter.tasks import check_task_names, find_task_files, skipped_files

# config.schema.yaml fills in every default (validate in the Snakefile), so config is indexed
# directly: a default lives in the schema only (embedding.cache_dir has none there: its default
# is under resources_dir, see llmrouter.embedding.cache_root).
# Normalised as Snakemake normalises a target: `results: out/` or `./out` would otherwise
# write patterns (out//scores/...) that no target given on the command line matches.
RESULTS = os.path.normpath(config["results"])
RESOURCES = os.path.normpath(config["resources_dir"])
FIGURES = f"{RESULTS}/report/figures"
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
    settings = config["new_tasks"]
    if workflow.is_main_process:
        # A misspelt folder, or a task file in a format not read, would otherwise surface as
        # "no rule to produce" a task's scores.
        if not Path(settings["folder"]).is_dir():
            print(
                f"[new_tasks] no folder {settings['folder']!r} here: no task files read from it",
                file=sys.stderr,
            )
        for path, reason in skipped_files(settings["folder"]):
            print(f"[new_tasks] {path}: {reason}; skipped", file=sys.stderr)
    found = find_task_files(settings["folder"], settings["files"])
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


def helm_run_metrics(wildcards):
    """The metrics a HELM run may be scored with, in order (llmrouter.helm.index
    .metric_candidates): its download fetches per_instance_stats.json as well when
    display_predictions.json has none of them."""
    scenario = parse_run_name(wildcards.run).scenario
    return list(metric_candidates(scenario, config["helm"]["metrics"]))


def helm_index_suite():
    """helm.suite where it names the index (release null), else None (rules/helm.smk refuses
    a suite beside a release)."""
    return None if config["helm"]["release"] else config["helm"]["suite"]


def helm_run_list(wildcards=None):
    """The selected HELM runs (checkpoint select_helm_runs): run, suite, dataset, ..."""
    import polars as pl

    return pl.read_parquet(checkpoints.select_helm_runs.get().output[0])


def dataset_names(wildcards=None):
    """Benchmark datasets: the table's, or with source helm the checkpoint's run list."""
    if config["source"] == "helm":
        names = sorted(helm_run_list()["dataset"].unique().to_list())
        # The table source's names are checked at parse time; HELM's are known only now.
        check_task_names(list(NEW_TASKS), names)
        return names
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


def table_input(wildcards=None):
    """The long table of benchmark results (source table; nothing with source helm)."""
    return config["table"]["path"] if config["source"] == "table" else []


def table_threshold():
    """Score at or above which a table row counts as correct (source table)."""
    return config["table"]["threshold"] if config["source"] == "table" else None


# The config's embedding settings (llmrouter.embedding.EmbeddingSettings) as the jobs take
# them: without the cache folder, with a local model folder's fingerprint
# (llmrouter.embedding.embedding_params). Taken once per parse, not once per rule that takes
# it: a local model's fingerprint stats (and, within seconds of a change, reads) every file.
EMBEDDING_SETTINGS = embedding_params(config["embedding"], cache_root(config))


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
    """What a new task is scored from (score_task's inputs, its OT distance row always: the
    ranking shows its nearest benchmark tasks) and ranked with (its prompts, the benchmark's
    distance matrix)."""
    task = wildcards.new_task
    return {
        "neighbours": f"{RESULTS}/neighbours/{task}.parquet",
        "pool": f"{RESULTS}/pool/correctness.parquet",
        "models": f"{RESULTS}/pool/models.parquet",
        "pairs": f"{RESULTS}/smoother/pairs.parquet",
        "bandwidth": f"{RESULTS}/smoother/bandwidth.parquet",
        "prompts": f"{RESULTS}/tasks/{task}.parquet",
        "task_distances": f"{RESULTS}/distances/{task}.parquet",
        "distance_matrix": f"{RESULTS}/distances.parquet",
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
    if config["knn"]["index"] == "approximate":
        return {"index": f"{RESULTS}/knn/ann_index.parquet"}
    return {}


def approximate_search_probes():
    """knn.n_probe, which only the approximate index reads: None with exact search, so changing
    it reruns no exact search."""
    return config["knn"]["n_probe"] if config["knn"]["index"] == "approximate" else None


def task_embeddings(wildcards):
    """Embeddings of the task whose neighbours are searched."""
    return f"{RESULTS}/embeddings/{wildcards.task}.parquet"


def routing_params():
    """The method's settings (llmrouter.routing.RoutingParams), passed to scripts as params
    so a change reruns the jobs."""
    return {
        **predictor_params(),
        "threshold": config["selection"]["threshold"],
        "bandwidth": smoother_bandwidth(),
        "fallback_share": config["selection"]["fallback_share"],
        "draws": config["selection"]["draws"],
        "seed": config["selection"]["seed"],
        "mode": config["evaluation"]["mode"],
        "descriptor": config["smoother"]["descriptor"],
    }


def ablation_routing_params():
    """routing_params less what each ablation variant sets itself (mode, descriptor,
    bandwidth): changing those settings leaves the ablation as it is."""
    return {
        key: value
        for key, value in routing_params().items()
        if key not in ("mode", "descriptor", "bandwidth")
    }


def predictor_params():
    """The kNN predictor's neighbours (k) and the descriptor u's (descriptor_k): all of
    routing_params that g and u depend on (an OT row stores u, so takes descriptor_k
    alone)."""
    return {"k": config["knn"]["k"], "descriptor_k": config["smoother"]["descriptor_k"]}


def pairs_params():
    """What the smoother's pairs depend on: the predictor, its threshold and the mode."""
    return {
        **predictor_params(),
        "threshold": config["selection"]["threshold"],
        "mode": config["evaluation"]["mode"],
    }


def distance_params():
    """How task distances are computed (OT between subsampled embedding clouds). reg is
    Sinkhorn's alone: None with emd, so changing it reruns no exact row."""
    params = dict(config["distances"])
    if params["method"] != "sinkhorn":
        params["reg"] = None
    return params


def smoother_bandwidth():
    """smoother.bandwidth as used (llmrouter.smoother.configured_bandwidth): None with the
    `agreement` descriptor, so changing the bandwidth then reruns nothing."""
    smoother = config["smoother"]
    return configured_bandwidth(smoother["bandwidth"], smoother["descriptor"])


def bandwidth_grid():
    """Candidate bandwidths of `smoother.bandwidth: auto` (config, else the library's)."""
    return config["smoother"]["bandwidth_grid"] or list(DEFAULT_BANDWIDTH_GRID)


def searched_bandwidth_grid():
    """The grid fit_bandwidth searches: none with a fixed bandwidth or the `agreement`
    descriptor, so changing the grid then refits nothing (the ablation's auto variant still
    takes it)."""
    return bandwidth_grid() if smoother_bandwidth() == "auto" else []


def cost_params():
    """Per-model costs and the epsilons of cost-aware picks (results/report/frontier.*)."""
    return dict(config["cost"])


def models_named_in_config():
    """Models the config names (models.include; helm.models with the HELM source): a cost.models
    key may name one of them even when none of its results reached the pool."""
    named = set(config["models"]["include"])
    if config["source"] == "helm" and config["helm"]["models"] != "all":
        named |= set(config["helm"]["models"])
    return sorted(named)


def cost_outputs():
    """The frontier, built when config gives per-model costs."""
    if not cost_params()["models"]:
        return []
    return [f"{RESULTS}/report/frontier.parquet", f"{RESULTS}/report/frontier.png"]


def ablation_params():
    """Settings of the ablation (results/report/ablation.md)."""
    return dict(config["ablation"])


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


def report_figures(wildcards=None):
    """Every figure (and the summary page) of `snakemake --report` (the cost frontier is in
    cost_outputs)."""
    outputs = [
        f"{RESULTS}/report/summary.html",
        f"{FIGURES}/picks_vs_oracle.png",
        f"{FIGURES}/smoother_curves.png",
        f"{FIGURES}/task_distances.png",
    ]
    return outputs + expand(f"{FIGURES}/ranking_{{task}}.png", task=list(NEW_TASKS))


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
