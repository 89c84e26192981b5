"""HELM runs of one dataset -> its correctness table (the `table` source's format).

A run's scores are per instance: the scenario's metric on the test (else valid) split,
without perturbed copies, averaged over train trials. Rows from every model's run of the
dataset are then cleaned by llmrouter.benchmark.correctness_table (NaN, repeated texts,
threshold), exactly as a `table` source is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from llmrouter.artifacts import InputError
from llmrouter.benchmark import CleaningReport, correctness_table
from llmrouter.helm import reader
from llmrouter.helm.index import metric_candidates, metric_for, parse_run_name
from llmrouter.logs import warn


def load_json(path: Path) -> object:
    """Parse a downloaded JSON file, naming it when it is unreadable."""
    try:
        with open(path, "rb") as handle:
            return json.load(handle)
    except (OSError, ValueError) as error:
        raise InputError(f"{path}: cannot read as JSON ({error}); download the run again: "
                         "snakemake --forcerun <its record in results/helm/downloads/>") from None


@dataclass
class RunScores:
    """One run's per-instance scores and what the log should say about them."""

    model: str
    metric: str
    rows: pl.DataFrame  # instance_id (HELM's), text, score, n_trials
    n_trials: int


def run_model(run_spec: dict, source: str) -> tuple[str, str]:
    """HELM model id (`org/name`) and adaptation method ("" when absent) from run_spec.json."""
    try:
        adapter = run_spec["adapter_spec"]
        return (reader.field_text(adapter["model"], "adapter_spec.model"),
                reader.field_text(adapter.get("method", ""), "adapter_spec.method"))
    except (KeyError, TypeError) as error:
        raise reader.format_error(source, "the run spec", error) from None


def read_run(folder: str | Path, files: list[str], run: str,
             metrics: dict | None = None) -> RunScores:
    """Per-instance scores of one downloaded run (files as listed by its download record)."""
    folder = Path(folder)
    spec_path = folder / "run_spec.json"
    model, method = run_model(load_json(spec_path), str(spec_path))
    candidates = metric_candidates(parse_run_name(run).scenario, metrics)
    multiple_choice = method.startswith("multiple_choice")
    if "instances.json" in files:
        path = folder / "instances.json"
        instances = reader.read_instances(load_json(path), str(path), multiple_choice)
    else:
        path = folder / "scenario_state.json"
        raw = reader.scenario_state_instances(load_json(path), str(path))
        instances = reader.read_instances(raw, str(path), multiple_choice)
    trials, metric = read_trials(folder, files, candidates)
    rows = reader.instance_scores(instances, trials)
    if rows.height == 0:
        # A model without rows would silently drop out of the whole pool (not in every
        # dataset): a run that scores nothing is broken, not empty.
        raise InputError(f"{folder}: no instance of run {run} has a score ({instances.height} "
                         f"instances, {trials.height} scored trials with metric {metric}; "
                         "their instance ids do not match); to download it again, delete that "
                         "folder (files that parse are otherwise kept) and run snakemake "
                         "--forcerun <its record in results/helm/downloads/>; or leave the run "
                         "out with helm.runs.exclude")
    n_trials = int(rows["n_trials"].max() or 0)
    return RunScores(model=model, metric=metric, rows=rows, n_trials=n_trials)


def read_trials(folder: Path, files: list[str],
                candidates: tuple[str, ...]) -> tuple[pl.DataFrame, str]:
    """Per-trial values (instance_id, train_trial_index, value) of the first of `candidates`
    the run has, and its name. display_predictions.json holds only the metrics HELM's schema
    shows for the run's groups, so per_instance_stats.json (every metric the run computed),
    when downloaded, is read for a metric the former lacks."""
    readers = [(name, read) for name, read in (
        (reader.DISPLAY_FILE, reader.read_display_predictions),
        (reader.STATS_FILE, reader.read_per_instance_stats)) if name in files]
    for name, read in readers:
        path = folder / name
        data = load_json(path)
        for metric in candidates:
            try:
                trials = read(data, metric, str(path))
            except reader.MetricMissing:
                continue
            return trials.drop("split", strict=False), metric
    wanted = (f"metric {candidates[0]!r}" if len(candidates) == 1
              else f"any of the metrics {list(candidates)}")
    raise InputError(f"{folder}: no unperturbed row of {' or '.join(n for n, _ in readers)} "
                     f"has {wanted}; set the scenario's metric in helm.metrics or leave the "
                     "run out with helm.runs.exclude")


def dataset_rows(dataset: str, runs: list[RunScores]) -> pl.DataFrame:
    """Long rows dataset, instance_id, text, model, score of one dataset's runs.

    instance_id is `<dataset>:<HELM id>`, unique across datasets (HELM ids such as `id1295`
    repeat between scenarios).
    """
    frames = [
        run.rows.select(
            pl.lit(dataset).alias("dataset"),
            (pl.lit(f"{dataset}:") + pl.col("instance_id")).alias("instance_id"),
            "text",
            pl.lit(run.model).alias("model"),
            "score",
        )
        for run in runs
    ]
    schema = {"dataset": pl.String, "instance_id": pl.String, "text": pl.String,
              "model": pl.String, "score": pl.Float64}
    return pl.concat(frames) if frames else pl.DataFrame(schema=schema)


def dataset_table(dataset: str, downloads: pl.DataFrame, metrics: dict | None = None,
                  on_missing: str = "skip") -> tuple[pl.DataFrame, CleaningReport, list[str]]:
    """The correctness table of `dataset` from its download records (DOWNLOAD_COLUMNS).

    Runs not downloaded (`missing`, `broken`) are left out; so, with on_missing "skip" (the
    config's helm.on_missing), are downloaded runs that cannot be read, each with a warning;
    with "fail" those stop it. The threshold is the scenario's. Returns the table, the
    cleaning report and lines for the log.
    """
    lines, runs, names, threshold = [], [], [], None
    for record in downloads.iter_rows(named=True):
        if record["status"] != "ok":
            lines.append(f"{record['run']}: skipped ({record['status']}: {record['reason']})")
            continue
        try:
            scores = read_run(record["folder"], record["files"], record["run"], metrics)
        except InputError as error:
            if on_missing != "skip":
                raise
            warn(f"HELM run {record['run']} cannot be read, left out (helm.on_missing: "
                 f"skip): {error}")
            lines.append(f"{record['run']}: skipped (unreadable: {error})")
            continue
        scenario = parse_run_name(record["run"]).scenario
        threshold = float(metric_for(scenario, metrics)["threshold"])
        lines.append(f"{record['run']}: {scores.model}, {scores.rows.height} instances, "
                     f"{scores.n_trials} trial(s), metric {scores.metric}")
        runs.append(scores)
        names.append(record["run"])
    if not runs:
        raise InputError(f"dataset {dataset!r}: none of its {downloads.height} HELM runs was "
                         "downloaded and readable (see results/helm/missing_runs.tsv and this "
                         "job's log); exclude it with helm.runs.exclude")
    models = [run.model for run in runs]
    repeated = sorted({m for m in models if models.count(m) > 1})
    if repeated:
        raise InputError(f"dataset {dataset!r}: several runs of model(s) {repeated}; exclude "
                         "all but one with helm.runs.exclude")
    try:
        table, report = correctness_table(dataset_rows(dataset, runs), dataset, threshold)
    except InputError as error:
        # The table source's message names its file; here the runs are what a user can act on.
        raise InputError(f"{error} (HELM runs {names}; leave a run out with "
                         "helm.runs.exclude)") from error
    return table, report, lines
