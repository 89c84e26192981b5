"""The workflow with `source: helm` against a local HELM mirror on 127.0.0.1.

The mirror is written from a slice of ../shared/data/helm_mmlu.parquet (3 subjects x 4
models), so the HELM source must end in the same correctness tables as the table source.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import polars as pl
import pytest
import yaml

from conftest import EMBEDDING_CACHE, mmlu_slice, run_workflow as run_snakemake
from helm_mirror import Fault, run_name, serve, write_tree
from llmrouter.benchmark import correctness_table

SUBJECTS, MODELS = 3, 4


def helm_config(directory: Path, base_url: str, **helm) -> Path:
    """A `source: helm` config for a run inside `directory`."""
    config = {
        "source": "helm",
        "results": str(directory / "results"),
        "resources_dir": str(directory / "resources"),
        "embedding": {"cache_dir": str(EMBEDDING_CACHE)},
        # Every helm key the default config.yaml sets, since --configfile merges into it.
        "helm": {"base_url": base_url, "project": "mmlu", "release": "v1.13.0",
                 "runs": {"include": [], "exclude": []}, "models": "all",
                 "on_missing": "skip", "timeout_s": 3.0, "retries": 3, "backoff_s": 0.01,
                 **helm},
    }
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def run_workflow(config: Path, *targets: str, check: bool = True,
                 extra: tuple[str, ...] = ()):
    """conftest.run_workflow; `--` keeps the targets from being read as --forcerun's values."""
    return run_snakemake(config, *targets, check=check, extra=(*extra, "--"))


def expected_table(frame: pl.DataFrame, dataset: str) -> pl.DataFrame:
    """The table source's correctness table of `dataset`, with the HELM source's ids."""
    rows = frame.filter(dataset=dataset).with_columns(
        instance_id=pl.col("dataset") + ":" + pl.col("helm_instance_id"))
    table, _ = correctness_table(rows.select("dataset", "instance_id", "text", "model", "score"),
                                 dataset, 0.5)
    return table


def no_partial_files(folder: Path) -> None:
    """No temporary file anywhere, and every downloaded JSON file parses."""
    assert [p for p in folder.rglob("*.tmp")] == []
    for path in folder.rglob("*.json"):
        json.loads(path.read_text())


def missing_runs(results: Path) -> pl.DataFrame:
    return pl.read_csv(results / "helm" / "missing_runs.tsv", separator="\t")


@pytest.fixture
def mirror(tmp_path):
    frame = mmlu_slice(datasets=SUBJECTS, models=MODELS)
    names = sorted({run_name(d, m) for d, m in frame.select("dataset", "model").iter_rows()})
    # One run is served in the per_instance_stats format: the reader's fallback.
    write_tree(frame, tmp_path / "mirror", per_instance_stats_runs=frozenset(names[:1]))
    server = serve(tmp_path / "mirror")
    server.frame, server.runs = frame, names
    yield server
    server.stop()


@pytest.mark.slow
def test_mirror_workflow_equals_table_source(tmp_path, mirror):
    config = helm_config(tmp_path, mirror.base_url)
    results = tmp_path / "results"
    # Through the checkpoint to the held-out scores and the evaluation summary.
    done = run_workflow(config, str(results / "helm" / "missing_runs.tsv"),
                        str(results / "report" / "summary.md"))
    for dataset in sorted(mirror.frame["dataset"].unique()):
        got = pl.read_parquet(results / "benchmark" / f"{dataset}.parquet")
        assert got.equals(expected_table(mirror.frame, dataset)), dataset
    assert missing_runs(results).height == 0
    assert f"[helm] {SUBJECTS * MODELS} runs: {SUBJECTS * MODELS} ok" in done.stdout
    assert (results / "report" / "summary.md").exists()
    assert len(list((results / "scores").glob("*.parquet"))) == SUBJECTS
    # Only the files needed: run_spec, instances, and one of the two per-instance files.
    assert sum(mirror.served.values()) == 1 + 3 * SUBJECTS * MODELS
    # How patiently files are fetched changes no file: nothing reruns (a rerun download would
    # rerun the whole workflow after it).
    done = run_workflow(config, str(results / "helm" / "missing_runs.tsv"),
                        str(results / "report" / "summary.md"),
                        extra=("-n", "--config", 'helm={"timeout_s": 9.0, "retries": 1, '
                               '"backoff_s": 2.0}'))
    assert "Nothing to be done" in done.stdout + done.stderr, done.stdout + done.stderr
    # A misspelt scenario in helm.metrics, added after the run list exists, would leave the
    # default metric in place: the jobs the edit reruns stop on it.
    done = run_workflow(config, str(results / "report" / "summary.md"), check=False,
                        extra=("--config", 'helm={"metrics": {"MMLU": {"name": "exact_match", '
                               '"threshold": 0.9}}}'))
    assert done.returncode != 0
    assert "config helm.metrics: unknown scenario(s) ['MMLU']" in done.stdout + done.stderr


@pytest.mark.slow
def test_faults_are_retried_reported_and_skipped(tmp_path, mirror):
    flaky, slow, gone, cut = mirror.runs[1], mirror.runs[2], mirror.runs[5], mirror.runs[10]
    mirror.faults += [Fault(f"{flaky}/instances.json", "error500", times=2),
                      Fault(f"{slow}/display_predictions.json", "slow", times=1, delay=6.0),
                      Fault(f"{gone}/", "missing"),
                      Fault(f"{cut}/display_predictions.json", "truncate")]
    config = helm_config(tmp_path, mirror.base_url)
    results, resources = tmp_path / "results", tmp_path / "resources"
    pool = str(results / "pool" / "correctness.parquet")
    report = str(results / "helm" / "missing_runs.tsv")
    run_workflow(config, pool, report)

    missing = missing_runs(results)
    assert dict(zip(missing["run"], missing["status"])) == {gone: "missing", cut: "broken"}
    downloads = pl.read_parquet(results / "helm" / "downloads.parquet")
    retries = dict(zip(downloads["run"], downloads["retries"]))
    assert retries[flaky] == 2 and retries[slow] == 1 and retries[cut] == 3
    no_partial_files(resources)
    gone_dataset = gone.split("subject=")[1].split(",")[0]
    gone_model = mirror.frame.filter(dataset=gone_dataset)["model"].unique().sort()
    table = pl.read_parquet(results / "benchmark" / f"{gone_dataset}.parquet")
    assert table["model"].n_unique() == len(gone_model) - 1

    # The fault cleared: a plain run has nothing to do, and retrying the listed runs fetches
    # only their files.
    served_before = set(mirror.served)
    mirror.clear()
    run_workflow(config, pool, report)
    assert sum(mirror.requests.values()) == 0
    run_workflow(config, pool, report, extra=("--forcerun", *missing["record"].to_list()))
    assert missing_runs(results).height == 0
    assert set(mirror.requests) & served_before == set()
    assert {p.split("/")[-2] for p in mirror.requests} == {gone, cut}
    assert pl.read_parquet(results / "benchmark" / f"{gone_dataset}.parquet").equals(
        expected_table(mirror.frame, gone_dataset))


@pytest.mark.slow
def test_on_missing_fail_stops_clearly_and_resumes(tmp_path, mirror):
    gone = mirror.runs[4]
    mirror.faults.append(Fault(f"{gone}/", "missing"))
    config = helm_config(tmp_path, mirror.base_url, on_missing="fail")
    results = tmp_path / "results"
    report = str(results / "helm" / "missing_runs.tsv")
    failed = run_workflow(config, report, check=False)
    assert failed.returncode != 0
    assert f"HELM run {gone} is missing" in failed.stderr + failed.stdout
    assert "on_missing" in failed.stderr + failed.stdout
    no_partial_files(tmp_path / "resources")
    assert not (results / "helm" / "missing_runs.tsv").exists()

    served_before = set(mirror.served)
    mirror.clear()
    run_workflow(config, report)
    assert missing_runs(results).height == 0
    assert set(mirror.served) & served_before == set()  # nothing fetched twice
    assert any(gone in p for p in mirror.served)


@pytest.mark.slow
def test_a_new_task_named_like_a_helm_dataset_is_refused(tmp_path, mirror):
    # HELM's dataset names are known only after the run list is fetched. The name check ran
    # only when such a task was scored; a benchmark target stopped on Snakemake's
    # AmbiguousRuleException between embed_new_task and embed_dataset, naming no clash.
    dataset = sorted(mirror.frame["dataset"].unique())[0]
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / f"{dataset}.jsonl").write_text('{"text": "What is 2 + 2?"}\n')
    config = helm_config(tmp_path, mirror.base_url)
    done = run_workflow(config, str(tmp_path / "results" / "distances.parquet"), check=False)
    assert done.returncode != 0
    assert f"task file name(s) ['{dataset}'] equal benchmark dataset name(s)" in (
        done.stdout + done.stderr)
    assert not (tmp_path / "results" / "embeddings").exists()


def test_unreachable_helm_fails_fast_saying_how_to_run_offline(tmp_path):
    config = helm_config(tmp_path, "http://helm.invalid")
    start = time.monotonic()
    done = run_workflow(config, check=False)
    assert done.returncode != 0
    assert time.monotonic() - start < 60
    output = done.stdout + done.stderr
    assert "HELM cannot be reached" in output
    assert 'make run ARGS="--configfile config/helm_mmlu.yaml"' in output


def test_a_suite_beside_a_release_is_refused_not_ignored(tmp_path):
    # helm.release has a default, so `suite:` written alone indexed the release's runs instead.
    config = helm_config(tmp_path, "http://helm.invalid", suite="v1.0.0")
    done = run_workflow(config, check=False, extra=("-n", "--quiet", "host"))
    assert done.returncode != 0
    assert "config helm: suite 'v1.0.0' is read only with `release: null`" in (
        done.stdout + done.stderr)
    settings = yaml.safe_load(config.read_text())
    settings["helm"]["release"] = None
    config.write_text(yaml.safe_dump(settings))
    done = run_workflow(config, check=False, extra=("-n", "--quiet", "host"))
    assert "suite 'v1.0.0' is read only" not in done.stdout + done.stderr
    assert done.returncode == 0, done.stderr
    assert "runs/v1.0.0/run_specs.json" in done.stdout + done.stderr
