"""Bad input gets a clear error naming the file and the problem, and leaves nothing behind."""

from pathlib import Path

import polars as pl
import pytest

from conftest import mmlu_slice, run_workflow, write_config

pytestmark = pytest.mark.slow


def failing_run(config: Path, *targets: str) -> str:
    """The output of a run that must fail; it must leave no temporary file and no score."""
    done = run_workflow(config, *targets, check=False)
    assert done.returncode != 0, "the workflow should have failed"
    results = config.parent / "results"
    if results.exists():
        assert list(results.rglob("*.tmp")) == [], "a half-written file was left behind"
        assert not (results / "scores").exists() or not any((results / "scores").iterdir())
    return done.stdout + done.stderr


def small(tmp_path: Path) -> pl.DataFrame:
    return mmlu_slice(datasets=2, models=3)


def test_missing_column_names_file_and_column(tmp_path):
    path = tmp_path / "table.parquet"
    small(tmp_path).drop("score").write_parquet(path)
    out = failing_run(write_config(tmp_path, path))
    assert "table.parquet" in out and "missing column(s) ['score']" in out


def test_unreadable_file_names_it(tmp_path):
    path = tmp_path / "table.parquet"
    path.write_bytes(b"PAR1 this is not a parquet file")
    out = failing_run(write_config(tmp_path, path))
    assert "table.parquet" in out and "cannot read" in out


def test_missing_file_names_it(tmp_path):
    out = failing_run(write_config(tmp_path, tmp_path / "absent.parquet"))
    assert "absent.parquet" in out and "does not exist" in out


def test_unknown_model_in_config(tmp_path):
    path = tmp_path / "table.parquet"
    small(tmp_path).write_parquet(path)
    out = failing_run(write_config(tmp_path, path, models={"exclude": ["acme/no-such-model"]}))
    assert "models.exclude" in out and "acme/no-such-model" in out
    assert not (tmp_path / "results" / "pool" / "correctness.parquet").exists()


def test_bad_config_fails_schema_validation(tmp_path):
    path = tmp_path / "table.parquet"
    small(tmp_path).write_parquet(path)
    out = failing_run(write_config(tmp_path, path, evaluation={"mode": "sloppy"}))
    # One line naming the key (llmrouter/config_schema.py), not Snakemake's schema dump.
    assert "evaluation.mode: 'sloppy' is not one of ['strict', 'reference']" in out
    assert "Failed validating" not in out
    # Snakemake's validate takes these; the stricter check must still stop the run.
    out = failing_run(write_config(tmp_path, path, knn={"k": 5.0},
                                   smoother={"bandwidth": float("nan")}))
    assert "knn.k: 5.0 is not an integer (write 5)" in out
    assert "smoother.bandwidth: nan is not a finite number" in out


def test_empty_dataset_names_file_and_dataset(tmp_path):
    frame = small(tmp_path)
    first = sorted(frame["dataset"].unique())[0]
    frame = frame.with_columns(
        pl.when(pl.col("dataset") == first).then(float("nan")).otherwise(pl.col("score"))
        .alias("score"))
    path = tmp_path / "table.parquet"
    frame.write_parquet(path)
    out = failing_run(write_config(tmp_path, path))
    assert "table.parquet" in out and first in out and "empty dataset" in out
    assert not (tmp_path / "results" / "benchmark" / f"{first}.parquet").exists()


def test_a_model_dropped_from_the_pool_is_named_on_the_terminal(tmp_path):
    # Audit: a model without results on one dataset left every ranking with a line in
    # collect_pool's log alone; one excluded in config is no surprise and stays there.
    frame = small(tmp_path)
    first = sorted(frame["dataset"].unique())[0]
    gone, excluded, kept = sorted(frame["model"].unique())
    frame = frame.filter((pl.col("dataset") != first) | (pl.col("model") != gone))
    path = tmp_path / "table.parquet"
    frame.write_parquet(path)
    config = write_config(tmp_path, path, models={"exclude": [excluded]})
    done = run_workflow(config, str(tmp_path / "results" / "pool" / "models.parquet"))
    terminal = done.stdout + done.stderr
    log = tmp_path / "results" / "logs" / "collect_pool.log"
    assert (f"WARNING: model {gone} dropped: missing from 1 dataset(s): ['{first}'] "
            f"(log: {log})") in terminal, terminal
    assert f"pool: 1 model ({kept}): there is no other model to route to" in terminal
    assert excluded not in terminal and f"model {excluded} dropped: in models.exclude" in \
        log.read_text()


@pytest.mark.parametrize("results", ["out/", "./out", "out//"])
def test_a_results_folder_written_with_a_slash_or_dot_takes_its_targets(tmp_path, results):
    # Audit: the rules pasted `out/` into their outputs (out//scores/...), so the README's
    # `snakemake out/scores/<task>.parquet` had no rule to produce it.
    path = tmp_path / "table.parquet"
    small(tmp_path).write_parquet(path)
    config = write_config(tmp_path, path, results=results)
    name = sorted(small(tmp_path)["dataset"].unique())[0]
    done = run_workflow(config, f"out/scores/{name}.parquet", extra=("-n",))
    assert "score_task" in done.stdout + done.stderr, done.stdout + done.stderr


def test_a_results_folder_that_normalises_to_the_working_directory_is_refused(tmp_path):
    # Review: the schema refused `.`, but `out/..` passed it and gave ./scores/... again.
    path = tmp_path / "table.parquet"
    small(tmp_path).write_parquet(path)
    done = run_workflow(write_config(tmp_path, path, results="out/.."), extra=("-n",),
                        check=False)
    assert done.returncode != 0
    assert ("results: 'out/..' is the working directory; give the outputs a folder of their "
            "own (e.g. results)" in done.stdout + done.stderr), done.stdout + done.stderr
