"""Robust transfer against a local HELM mirror (127.0.0.1) with injected faults."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from conftest import mmlu_slice
from helm_mirror import Fault, serve, split_options, write_tree
from llmrouter.artifacts import InputError
from llmrouter.helm.convert import read_run
from llmrouter.helm.download import (DOWNLOAD_COLUMNS, MAX_RETRY_AFTER_S, BrokenFile,
                                     HelmUnreachable, MissingFile, RunDownload, Transfer,
                                     displays_any, download_record, download_run, fetch_index,
                                     fetch_json, file_url, project_roots, retry_after_s,
                                     transfer_settings, FetchStats)

# A timeout well above a local answer's time on a loaded 2-core machine (an ordinary request
# must never time out, or the retry counts below change), and slow faults well above it.
FAST = Transfer(timeout_s=3.0, retries=3, backoff_s=0.01)


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("mirror")
    runs = write_tree(mmlu_slice(datasets=1, models=2), root)
    return root, runs


@pytest.fixture
def mirror(tree):
    server = serve(tree[0])
    yield server
    server.stop()


def run_path(run: str, name: str) -> str:
    return f"/mmlu/benchmark_output/runs/v1.0.0/{run}/{name}"


def leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


def test_urls_percent_encode_run_names():
    url = file_url("http://h/mmlu/benchmark_output", "runs", "v1", "mmlu:subject=a,model=b")
    assert url == "http://h/mmlu/benchmark_output/runs/v1/mmlu%3Asubject%3Da%2Cmodel%3Db"
    assert project_roots("http://h/", "classic", legacy_root=True) == [
        "http://h/classic/benchmark_output", "http://h/benchmark_output"]


def test_split_options_round_trip():
    text = "Which?\nA. one\nB. two\nC. three\nD. four"
    assert split_options(text) == ("Which?", ["one", "two", "three", "four"])


def test_download_run_fetches_three_files(mirror, tree, tmp_path):
    run = sorted(tree[1])[0]
    result = download_run(project_roots(mirror.base_url, "mmlu"), "v1.0.0", run, tmp_path, FAST)
    assert (result.status, result.files) == (
        "ok", ["run_spec.json", "instances.json", "display_predictions.json"])
    assert result.stats.requests == 3 and result.stats.retries == 0
    # Run names reach the server with their ':' ',' '=' intact after decoding.
    assert mirror.served[run_path(run, "instances.json")] == 1
    again = download_run(project_roots(mirror.base_url, "mmlu"), "v1.0.0", run, tmp_path, FAST)
    assert again.stats.requests == 0 and again.stats.cached == 3


def test_retries_5xx_and_slow_answers(mirror, tree, tmp_path):
    run = sorted(tree[1])[0]
    mirror.faults += [Fault("instances.json", "error500", times=2),
                      Fault("display_predictions.json", "slow", times=1, delay=6.0)]
    result = download_run(project_roots(mirror.base_url, "mmlu"), "v1.0.0", run, tmp_path, FAST)
    assert result.status == "ok"
    assert result.stats.retries == 3  # two 500s, one timeout
    assert leftovers(tmp_path) == []


def test_a_disk_that_fails_to_store_a_download_is_not_retried_as_the_network(
        mirror, tree, tmp_path, monkeypatch):
    # Retrying (with back-off) a full disk as a broken transfer would end in "... after 4
    # tries", naming the URL rather than the disk.
    def full_disk(tmp, final):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("llmrouter.helm.download.commit", full_disk)
    run = sorted(tree[1])[0]
    stats = FetchStats()
    with pytest.raises(OSError, match="No space left on device"):
        fetch_json(mirror.base_url + run_path(run, "instances.json"),
                   tmp_path / "instances.json", FAST, stats)
    assert stats.requests == 1 and stats.retries == 0
    assert leftovers(tmp_path) == [] and not (tmp_path / "instances.json").exists()


def test_rate_limits_are_retried_after_the_wait_the_server_asks(mirror, tree, tmp_path):
    # A 429 says "not now", not "not here": taken as missing, it would drop the model from
    # the whole pool (a model must have every dataset).
    run = sorted(tree[1])[0]
    mirror.faults.append(Fault("instances.json", "throttle", times=2, delay=0.5))
    start = time.monotonic()
    result = download_run(project_roots(mirror.base_url, "mmlu"), "v1.0.0", run, tmp_path, FAST)
    assert result.status == "ok" and result.stats.retries == 2
    assert "instances.json" in result.files
    assert time.monotonic() - start >= 1.0  # Retry-After 0.5, twice, over a 0.01 s backoff
    assert mirror.requests[run_path(run, "instances.json")] == 3


def test_the_retry_policy_comes_from_the_helm_section():
    helm = {"timeout_s": 5, "retries": 2, "backoff_s": 0.5, "on_missing": "skip"}
    assert transfer_settings(helm) == Transfer(timeout_s=5.0, retries=2, backoff_s=0.5)


def test_retry_after_is_read_as_seconds_and_capped():
    assert [retry_after_s(v) for v in (None, "3", "0.5", "-2", "nan", "1e9")] == [
        0.0, 3.0, 0.5, 0.0, 0.0, MAX_RETRY_AFTER_S]
    assert retry_after_s("Wed, 21 Oct 2026 07:28:00 GMT") == 0.0


def test_404_is_missing_without_retry(mirror, tree, tmp_path):
    run = sorted(tree[1])[0]
    url = file_url(mirror.base_url, "mmlu", "benchmark_output", "runs", "v1.0.0", run, "nope.json")
    with pytest.raises(MissingFile):
        fetch_json(url, tmp_path / "nope.json", FAST, FetchStats())
    assert mirror.requests[run_path(run, "nope.json")] == 1
    mirror.faults.append(Fault(run, "missing"))
    result = download_run(project_roots(mirror.base_url, "mmlu"), "v1.0.0", run, tmp_path, FAST)
    assert result.status == "missing" and "HTTP 404" in result.reason
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kind", ["truncate", "drop"])
def test_truncated_json_never_lands(mirror, tree, tmp_path, kind):
    run = sorted(tree[1])[0]
    mirror.faults.append(Fault("display_predictions.json", kind))
    result = download_run(project_roots(mirror.base_url, "mmlu"), "v1.0.0", run, tmp_path, FAST)
    assert result.status == "broken"
    assert mirror.requests[run_path(run, "display_predictions.json")] == FAST.retries + 1
    assert not (tmp_path / "display_predictions.json").exists()
    assert leftovers(tmp_path) == []
    # The files it did get are whole, and a later try after the fault fetches only the rest.
    assert all(json.loads(p.read_text()) is not None for p in tmp_path.glob("*.json"))
    mirror.clear()
    again = download_run(project_roots(mirror.base_url, "mmlu"), "v1.0.0", run, tmp_path, FAST)
    assert again.status == "ok" and again.stats.requests == 1 and again.stats.cached == 2


def test_falls_back_to_per_instance_stats(tmp_path):
    root = tmp_path / "mirror"
    frame = mmlu_slice(datasets=1, models=1)
    runs = write_tree(frame, root, per_instance_stats_runs=frozenset(
        write_tree(frame, tmp_path / "names")))
    server = serve(root)
    try:
        result = download_run(project_roots(server.base_url, "mmlu"), "v1.0.0",
                              next(iter(runs)), tmp_path / "run", FAST)
    finally:
        server.stop()
    assert result.files == ["run_spec.json", "instances.json", "per_instance_stats.json"]


def test_download_record_follows_on_missing(tmp_path):
    stats = FetchStats(requests=3, retries=1, bytes=2048, cached=1)
    ok = RunDownload(run="mmlu:subject=a,model=x", suite="v1", status="ok",
                     files=["run_spec.json", "instances.json", "display_predictions.json"],
                     reason="", stats=stats, seconds=1.5)
    record = download_record(ok, tmp_path / "run", "fail")
    assert record.schema == DOWNLOAD_COLUMNS
    assert record.rows(named=True) == [{
        "run": "mmlu:subject=a,model=x", "suite": "v1", "status": "ok",
        "folder": str(tmp_path / "run"), "files": ok.files, "reason": "", "requests": 3,
        "retries": 1, "bytes": 2048, "cached": 1, "seconds": 1.5}]
    for status in ("missing", "broken"):
        gone = RunDownload(run="mmlu:subject=b,model=x", suite="v1", status=status, files=[],
                           reason="run_spec.json: HTTP 404", stats=FetchStats(), seconds=0.25)
        kept = download_record(gone, "f", "skip").row(0, named=True)
        assert (kept["status"], kept["files"], kept["reason"], kept["folder"]) == (
            status, [], "run_spec.json: HTTP 404", "f")
        with pytest.raises(InputError) as error:
            download_record(gone, "f", "fail")
        assert str(error.value) == (
            f"HELM run mmlu:subject=b,model=x is {status} (run_spec.json: HTTP 404); "
            "helm.on_missing: skip would skip it, helm.runs.exclude leaves it out")


def test_unreachable_host_fails_fast_with_offline_hint(tmp_path):
    start = time.monotonic()
    with pytest.raises(HelmUnreachable, match="cannot be reached.*config/helm_mmlu.yaml"):
        fetch_index(["http://helm.invalid/mmlu/benchmark_output"], "v1.13.0", None,
                    tmp_path / "index.json", Transfer())
    assert time.monotonic() - start < 30
    with pytest.raises(BrokenFile):
        fetch_json("http://127.0.0.1:9/x.json", tmp_path / "x.json", FAST, FetchStats())


def test_index_of_a_release_and_of_a_suite(tree, mirror, tmp_path):
    from llmrouter.helm.index import parse_index

    root, runs = tree
    roots = project_roots(mirror.base_url, "mmlu")
    path = fetch_index(roots, "v1.13.0", None, tmp_path / "release.json", FAST)
    assert parse_index(json.loads(path.read_text()), str(path)) == {r: "v1.0.0" for r in runs}
    specs = root / "mmlu" / "benchmark_output" / "runs" / "v1.0.0" / "run_specs.json"
    specs.write_text(json.dumps([{"name": r} for r in runs]))
    path = fetch_index(roots, None, "v1.0.0", tmp_path / "suite.json", FAST)
    assert parse_index(json.loads(path.read_text()), str(path), suite="v1.0.0") == {
        r: "v1.0.0" for r in runs}
    # Classic's pre-2026 layout: the index only under {base}/benchmark_output.
    legacy = project_roots(mirror.base_url + "/mmlu", "classic", legacy_root=True)
    assert fetch_index(legacy, "v1.13.0", None, tmp_path / "legacy.json", FAST).exists()


def test_a_metric_the_display_file_lacks_is_read_from_per_instance_stats(tmp_path):
    # HELM's display_predictions.json holds only the metrics its schema shows for the run's
    # groups (babi_qa's fixture: quasi_exact_match, not the exact_match it computed). A run
    # whose metric is not there stopped its whole dataset.
    root = tmp_path / "mirror"
    frame = mmlu_slice(datasets=1, models=1)
    runs = write_tree(frame, root, per_instance_stats_runs=frozenset(
        write_tree(frame, tmp_path / "names")))
    run = next(iter(runs))
    remote = root / "mmlu" / "benchmark_output" / "runs" / "v1.0.0" / run
    stats = json.loads((remote / "per_instance_stats.json").read_text())
    (remote / "display_predictions.json").write_text(json.dumps(
        [{"instance_id": row["instance_id"], "train_trial_index": 0,
          "stats": {"quasi_exact_match": 1.0}} for row in stats]))
    server = serve(root)
    try:
        roots = project_roots(server.base_url, "mmlu")
        result = download_run(roots, "v1.0.0", run, tmp_path / "run", FAST, ("exact_match",))
        plain = download_run(roots, "v1.0.0", run, tmp_path / "plain", FAST)
    finally:
        server.stop()
    assert result.files == ["run_spec.json", "instances.json", "display_predictions.json",
                            "per_instance_stats.json"]
    scores = read_run(tmp_path / "run", result.files, run)
    assert scores.metric == "exact_match"
    want = frame.unique("helm_instance_id", keep="first").sort("helm_instance_id")
    got = scores.rows.sort("instance_id")
    assert got["instance_id"].to_list() == want["helm_instance_id"].to_list()
    assert got["score"].to_list() == want["score"].to_list()
    # Without the run's metrics the display file alone is fetched, and has no exact_match.
    assert plain.files == result.files[:3]
    with pytest.raises(InputError, match="has metric 'exact_match'"):
        read_run(tmp_path / "plain", plain.files, run)


def test_a_display_file_of_another_shape_fetches_nothing_more(tmp_path):
    path = tmp_path / "display_predictions.json"
    for content, expected in (([{"stats": {"m": 1}, "perturbation": {"name": "x"}}], False),
                              ([{"stats": {"m": 1}}], True), ({"not": "a list"}, True),
                              ([{"stats": None}], True), ([], False),
                              ([{"stats": {"m": None}}], False)):
        path.write_text(json.dumps(content))
        assert displays_any(path, ("m",)) is expected, content
