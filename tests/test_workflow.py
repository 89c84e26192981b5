"""The real workflow on a 6-subject x 8-model slice of helm_mmlu, in temporary folders."""

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import polars as pl
import pytest

from conftest import REPO, SNAKEMAKE, mmlu_slice, run_workflow, write_config
from llmrouter.fingerprints import MEMO_FOLDER

pytestmark = pytest.mark.slow

SCORE_COLUMNS = ["model", "s1", "s2", "p", "s3", "accuracy"]


def outputs(results: Path) -> dict[str, pl.DataFrame]:
    """Every Parquet artifact downstream of the embeddings, by relative path: the OT distance
    matrix and its per-task rows among them (a missing matrix fails the read)."""
    found = {"distances.parquet": pl.read_parquet(results / "distances.parquet")}
    for sub in ["benchmark", "pool", "neighbours", "distances", "smoother", "scores", "report"]:
        for path in sorted((results / sub).glob("*.parquet")):
            found[str(path.relative_to(results))] = pl.read_parquet(path)
    return found


def assert_same_outputs(a: Path, b: Path) -> None:
    left, right = outputs(a), outputs(b)
    assert sorted(left) == sorted(right)
    # Each benchmark task's row of the OT matrix is compared, not skipped.
    rows = {f"distances/{name}.parquet" for name in mmlu_slice()["dataset"].unique()}
    assert rows <= set(left), f"no distance row file for {sorted(rows - set(left))}"
    for name in left:
        assert left[name].equals(right[name]), f"{name} differs"


@pytest.fixture(scope="module")
def slice_table(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "slice.parquet"
    mmlu_slice().write_parquet(path)
    return path


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, slice_table) -> Path:
    """One unbroken run of the slice; returns its results folder. What Snakemake's terminal
    showed is kept beside it, in terminal.txt. Its own embedding cache, empty at the start:
    the run embeds (and test_two_runs_give_identical_outputs compares it with a run on the
    tests' shared cache, which may hold the texts already)."""
    work = tmp_path_factory.mktemp("run")
    done = run_workflow(write_config(work, slice_table,
                                     embedding={"cache_dir": str(work / "embedding_cache")}))
    (work / "terminal.txt").write_text(done.stderr)
    return work / "results"


def test_outputs_hold_the_contract(finished_run):
    datasets = sorted(mmlu_slice()["dataset"].unique().to_list())
    bench = pl.read_parquet(finished_run / "benchmark" / f"{datasets[0]}.parquet")
    assert bench.columns == ["dataset", "instance_id", "text", "model", "score", "correct"]
    for name in datasets:
        scores = pl.read_parquet(finished_run / "scores" / f"{name}.parquet")
        assert scores.columns[: 1 + len(SCORE_COLUMNS)] == ["task", *SCORE_COLUMNS]
        assert scores.height == 8
        assert scores["accuracy"].null_count() == 0
        assert scores.select(pl.col("s1", "s2", "p", "s3").is_between(0, 1).all()).row(0) == (
            True,) * 4
    picks = pl.read_parquet(finished_run / "report" / "picks.parquet")
    assert picks.columns == ["task", "method", "model", "accuracy"]
    methods = set(picks["method"].unique())
    assert {"s1", "s2", "s3", "s3_true_p", "bma", "oracle"} <= methods
    assert picks.height == len(methods) * len(datasets)
    oracle = picks.filter(pl.col("method") == "oracle").sort("task")["accuracy"]
    for method in ["s1", "s2", "s3", "bma"]:
        mine = picks.filter(pl.col("method") == method).sort("task")["accuracy"]
        assert (mine <= oracle + 1e-12).all()
    summary = pl.read_parquet(finished_run / "report" / "summary.parquet")
    assert {"mean_accuracy", "ratio_to_oracle", "pearson", "spearman", "pick_is_bma_pct",
            "mean_rank"} <= set(summary.columns)
    text = (finished_run / "report" / "summary.md").read_text()
    assert "| s3 |" in text and "S3 against BMA" in text


def test_each_job_sizes_its_thread_pools_to_its_rule_threads(finished_run):
    """polars and the tokenizers start one thread per CPU unless told: a single-thread job
    on a 64-core node ran 64 polars threads (llmrouter.threads)."""
    logs = finished_run / "logs"
    expected = {"score_task": 1, "compute_task_distances": 1, "embed_dataset": 1,
                "find_neighbours": 2}
    for rule, threads in expected.items():
        rule_logs = sorted((logs / rule).glob("*.log"))
        assert len(rule_logs) == 6, rule  # one per subject of the slice
        for log in rule_logs:
            assert f"thread pools: polars {threads}, tokenizers {threads}, OpenMP/BLAS " \
                   f"{threads}" in log.read_text(), log
    # threads: 8, scaled down to the run's --cores 2
    assert "thread pools: polars 2, tokenizers 2" in (logs / "embed_all_texts.log").read_text()


def test_progress_reaches_the_terminal_not_the_log(finished_run):
    """A job's sys.stderr and file descriptor 2 are its log (llmrouter.logs.run_logged); the
    embedding's progress bar and summary line must still reach the terminal."""
    terminal = (finished_run.parent / "terminal.txt").read_text()
    log = (finished_run / "logs" / "embed_all_texts.log").read_text()
    assert re.search(r"embedding: 100%.*\| \d+/\d+ ", terminal)
    summary = re.search(r"embedding: \d+ texts in [\d.]+ s \(\d+ texts/s, .*\)", terminal)
    assert summary and summary.group(0) in log
    assert "embedding: 100%" not in log


def test_two_runs_give_identical_outputs(tmp_path, slice_table, finished_run):
    run_workflow(write_config(tmp_path, slice_table))
    assert_same_outputs(finished_run, tmp_path / "results")


def test_one_target_builds_only_what_it_needs(tmp_path, slice_table):
    config = write_config(tmp_path, slice_table)
    target = str(tmp_path / "results" / "scores" / "anatomy.parquet")
    run_workflow(config, target)
    assert Path(target).exists()
    assert not (tmp_path / "results" / "report").exists()
    assert not (tmp_path / "results" / "scores" / "astronomy.parquet").exists()


def test_killed_run_resumes_to_the_same_outputs(tmp_path, slice_table, finished_run):
    config = write_config(tmp_path, slice_table)
    command = [SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path),
               "--configfile", str(config), "--cores", "1", "--quiet", "rules"]
    process = subprocess.Popen(command, cwd=tmp_path, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    embeddings = tmp_path / "results" / "embeddings"
    deadline = time.time() + 600
    while time.time() < deadline and len(list(embeddings.glob("*.parquet"))) < 2:
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not (tmp_path / "results" / "report" / "summary.md").exists(), "killed too late"
    # A SIGKILL leaves Snakemake's lock behind; --unlock is the documented way to clear it.
    run_workflow(config, extra=("--unlock",))
    run_workflow(config, extra=("--rerun-incomplete",))
    assert_same_outputs(finished_run, tmp_path / "results")


def test_approximate_index_probing_every_cell_gives_the_exact_scores(tmp_path, slice_table,
                                                                    finished_run):
    """knn.index: approximate runs through the workflow (index rule, per-task search) and,
    with every cell probed, gives the exact run's neighbours and scores."""
    config = write_config(tmp_path, slice_table,
                          knn={"index": "approximate", "cell_size": 16, "n_probe": 100000})
    datasets = sorted(mmlu_slice()["dataset"].unique().to_list())
    run_workflow(config, *[str(tmp_path / "results" / "scores" / f"{d}.parquet")
                           for d in datasets])
    index = pl.read_parquet(tmp_path / "results" / "knn" / "ann_index.parquet")
    assert index.columns == ["dataset", "instance_id", "cell"]
    assert index["cell"].n_unique() > len(datasets)
    for name in datasets:
        for stage in ("neighbours", "scores"):
            mine = pl.read_parquet(tmp_path / "results" / stage / f"{name}.parquet")
            exact = pl.read_parquet(finished_run / stage / f"{name}.parquet")
            assert mine.equals(exact), f"{stage}/{name} differs from the exact run"


def planned_jobs(output: str) -> dict[str, int]:
    """rule -> job count from the "Job stats" table of a dry run's output."""
    table = output.split("Job stats:", 1)[1].split("total", 1)[0]
    return {name: int(count) for name, count in re.findall(r"^(\w+)\s+(\d+)$", table, re.M)}


def test_changing_the_mode_reruns_only_what_depends_on_it(finished_run):
    """The neighbour search, the OT distances and the ablation (which runs both modes itself)
    do not depend on evaluation.mode; the smoother's pairs and what follows do."""
    config = finished_run.parent / "config.yaml"
    done = run_workflow(config, extra=("-n", "--config", 'evaluation={"mode": "reference"}'))
    jobs = planned_jobs(done.stdout + done.stderr)
    assert jobs["fit_smoother"] == 1 and jobs["score_task"] == 6
    assert not {"find_neighbours", "compute_task_distances", "embed_dataset",
                "run_ablation"} & set(jobs)


def test_a_local_model_changed_in_place_reruns_the_embedding(tmp_path, model_checkpoint):
    """A model named by its folder is fingerprinted by its files (EmbeddingSettings.fingerprint):
    changed files give Snakemake other params, so the embedding and what follows rerun, into
    another cache folder, where the cache would otherwise have served the old vectors."""
    folder = model_checkpoint
    table = tmp_path / "slice.parquet"
    mmlu_slice(datasets=2, models=2).write_parquet(table)
    config = write_config(tmp_path, table, embedding={"model": str(folder),
                                                      "cache_dir": str(tmp_path / "cache")})
    target = str(tmp_path / "results" / "embeddings" / "abstract_algebra.parquet")
    run_workflow(config, target)
    index = tmp_path / "results" / "embedding_index.parquet"
    first = pl.read_parquet(index)["setting"].unique().to_list()
    done = run_workflow(config, target, extra=("-n",))
    assert "Nothing to be done" in done.stdout + done.stderr
    with open(folder / "README.md", "a") as readme:
        readme.write("\nRetrained on our own questions.\n")
    done = run_workflow(config, target, extra=("-n",))
    assert planned_jobs(done.stdout + done.stderr) == {"embed_all_texts": 1, "embed_dataset": 1}
    run_workflow(config, target)
    second = pl.read_parquet(index)["setting"].unique().to_list()
    assert len(first) == len(second) == 1 and first != second
    assert sorted(path.name for path in (tmp_path / "cache").iterdir()) == sorted(
        [*first, *second, MEMO_FOLDER])


def test_nested_command_line_values_mean_what_they_mean_in_a_config_file(finished_run):
    """Snakemake reads knn='{"k": 3}' as k '3' (a string); the Snakefile types it as a config
    file would, so the run plans the change instead of failing the schema. Each change reruns
    only what depends on it: k is g's alone (the neighbour lists, as k < descriptor_k, the OT
    rows and the embeddings stay)."""
    config = finished_run.parent / "config.yaml"
    done = run_workflow(config, extra=("-n", "--config", 'knn={"k": 3}',
                                       'selection={"draws": 500, "threshold": 0.5}'))
    jobs = planned_jobs(done.stdout + done.stderr)
    assert jobs["fit_smoother"] == 1 and jobs["score_task"] == 6
    assert not {"find_neighbours", "compute_task_distances", "embed_dataset"} & set(jobs)
    # The simulated draws are the fallback's alone: the pairs and the bandwidth stay.
    done = run_workflow(config, extra=("-n", "--config", 'selection={"draws": 500}'))
    jobs = planned_jobs(done.stdout + done.stderr)
    assert jobs["score_task"] == 6
    assert not {"fit_smoother", "fit_bandwidth", "plot_smoother_curves"} & set(jobs)
    # A value the schema rejects is reported as the number it is, not as a string.
    done = run_workflow(config, extra=("-n", "--config", 'knn={"k": 0}'), check=False)
    assert done.returncode != 0
    assert "knn.k: 0 is less than the minimum of 1 (set by --config)" in done.stdout + done.stderr


def test_settings_a_run_does_not_read_rerun_nothing(finished_run):
    """Memory use (block_size), where vectors are cached (a job embeds what its cache lacks),
    settings this run does not read (n_probe with exact search, reg with emd, the grid with a
    fixed bandwidth) and a setting given its own value again leave every job done but the
    ablation, which searches the grid in its auto variant."""
    config = finished_run.parent / "config.yaml"
    moved = finished_run.parent / "moved_cache"
    # precision first: a key --config sets comes before the schema's defaults in its section.
    done = run_workflow(config, extra=("-n", "--config", 'knn={"block_size": 7, "n_probe": 3}',
                                       'distances={"reg": 0.5}',
                                       'smoother={"bandwidth": 0.09}',  # unset: the same
                                       f'embedding={{"precision": "auto", "cache_dir": "{moved}"}}'))
    assert "Nothing to be done" in done.stdout + done.stderr, done.stdout + done.stderr
    done = run_workflow(config, extra=("-n", "--config", 'smoother={"bandwidth_grid": [0.1]}'))
    assert planned_jobs(done.stdout + done.stderr) == {"run_ablation": 1, "all": 1}
    # Where the run does read it, it reruns what it changes.
    done = run_workflow(config, extra=("-n", "--config", 'distances={"method": "sinkhorn"}'))
    assert planned_jobs(done.stdout + done.stderr)["compute_task_distances"] == 6


def test_agreement_descriptor_scores_by_agreement_and_ignores_the_bandwidth(tmp_path,
                                                                          slice_table):
    """With `descriptor: agreement`, p of each model is the agreement of its own S1 and S2 on
    the task (no smoother), and as nothing reads the bandwidth or its grid, changing either
    reruns no job."""
    config = write_config(tmp_path, slice_table, smoother={"descriptor": "agreement"})
    results = tmp_path / "results"
    datasets = sorted(mmlu_slice()["dataset"].unique().to_list())
    targets = [str(results / "scores" / f"{name}.parquet") for name in datasets]
    run_workflow(config, *targets)
    for name in datasets:
        scores = pl.read_parquet(results / "scores" / f"{name}.parquet")
        agreement = scores["s2"] * scores["s1"] + (1 - scores["s2"]) * (1 - scores["s1"])
        assert (scores["p"] - agreement).abs().max() < 1e-12, name
    fitted = pl.read_parquet(results / "smoother" / "bandwidth.parquet")
    assert fitted["bandwidth"].is_nan().all() and not fitted["auto"].any()
    for changed in ('smoother={"bandwidth": 0.3, "bandwidth_grid": [0.1]}',
                    'smoother={"bandwidth": "auto"}'):
        # -n last: --config would take the targets for settings
        done = run_workflow(config, *targets, extra=("--config", changed, "-n"))
        assert "Nothing to be done" in done.stdout + done.stderr, done.stdout + done.stderr
