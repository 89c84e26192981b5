"""The SLURM profile (profiles/slurm) against a real one-node SLURM on localhost.

The module's fixture installs slurm-wlm and munge with apt-get when they are missing, starts
munged, slurmctld and slurmd with every file under a temporary directory (tests/slurm/start.sh)
and stops each daemon by PID afterwards (tests/slurm/stop.sh). Without root or apt-get the tests
skip with the reason; a failing install or start fails them. The workflow runs on a slice of
helm_mmlu through a copy of the profile that only names the test node's partition, caps
threads at 2 and polls more often. The first run fails on bad input (a corrupt
embedding cache shard) and must say where and why and stop cleanly; after the fix
`--rerun-incomplete` resumes it, and every Parquet output under results/scores and
results/report must equal a local run of the same slice.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import yaml
from polars.testing import assert_frame_equal

from conftest import EMBEDDING_CACHE, REPO, SNAKEMAKE, mmlu_slice, require_shared, write_config
from llmrouter.artifacts import write_table
from llmrouter.embedding import EmbeddingSettings, text_hash

pytestmark = [pytest.mark.slow, pytest.mark.slurm]

SCRIPTS = REPO / "tests" / "slurm"
SLURM_TOOLS = ("sbatch", "squeue", "scancel", "sinfo", "scontrol", "slurmctld", "slurmd", "munged",
               "mungekey")
# More CPUs than the machine has: one stage's jobs mostly wait on Python start-up, and side by
# side they keep the test within its time budget. Memory is not enforced (no cgroups).
NODE_CPUS = 6
NODE_MEMORY_MB = 24000
PARTITION = "debug"
SLICE = {"datasets": 3, "models": 4}
# The rule that needs every score (the paper's table); a fixed target keeps this module's time
# independent of what else `rule all` grows to hold.
TARGET = "summarize_evaluation"
SUBMITTED = re.compile(r"has been submitted with SLURM jobid (\d+) \(log: (\S+)\)")
DAEMONS = ("munged", "slurmctld", "slurmd")


def run_script(name: str, *args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    """Run one of tests/slurm/*.sh; stdout and stderr together."""
    return subprocess.run(["bash", str(SCRIPTS / name), *args], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def slurm(tmp_path_factory) -> dict[str, str]:
    """A running one-node SLURM; yields the environment its clients need (SLURM_CONF)."""
    require_shared()
    if os.geteuid() != 0:
        pytest.skip("a one-node SLURM needs root (daemons run as root, packages via apt-get)")
    if not all(shutil.which(tool) for tool in SLURM_TOOLS) and not shutil.which("apt-get"):
        pytest.skip("slurm-wlm and munge are not installed and apt-get is absent")
    install = run_script("install.sh", timeout=600)
    if install.returncode != 0:
        pytest.fail(f"installing slurm-wlm and munge failed:\n{install.stdout}", pytrace=False)
    directory = tmp_path_factory.mktemp("slurm")
    pids: dict[str, str] = {}
    try:
        start = run_script("start.sh", str(directory), str(NODE_CPUS), str(NODE_MEMORY_MB))
        pids = {d: (directory / f"{d}.pid").read_text().strip() for d in DAEMONS
                if (directory / f"{d}.pid").exists()}
        if start.returncode != 0:
            pytest.fail(f"starting SLURM failed:\n{start.stdout}", pytrace=False)
        yield {**os.environ, "SLURM_CONF": str(directory / "slurm.conf")}
    finally:
        stop = run_script("stop.sh", str(directory))
        assert stop.returncode == 0, f"stopping SLURM failed:\n{stop.stdout}"
        alive = {d: pid for d, pid in pids.items() if Path(f"/proc/{pid}").exists()}
        assert not alive, f"daemons still running after stop.sh: {alive}"


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> Path:
    """The helm_mmlu slice every run of this module works on."""
    path = tmp_path_factory.mktemp("table") / "slice.parquet"
    mmlu_slice(**SLICE).write_parquet(path)
    return path


@pytest.fixture(scope="module")
def local_results(tmp_path_factory, table: Path) -> Path:
    """results/ of a local run (no cluster) of the slice: what every SLURM run must equal."""
    directory = tmp_path_factory.mktemp("local")
    done = run_snakemake(write_config(directory, table), os.environ, "--cores", "2")
    assert done.returncode == 0, f"local run failed:\n{done.stdout}\n{done.stderr}"
    return directory / "results"


def cluster_profile(directory: Path) -> Path:
    """profiles/slurm, fitted to the test node: its partition, its size, quick status polls."""
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    profile["default-resources"]["slurm_partition"] = PARTITION
    profile["max-threads"] = 2  # three jobs side by side on the test node
    profile["cores"] = 2  # and groups no wider
    # No slurmdbd here, so sacct knows nothing: squeue (MinJobAge=300 s) reports the states.
    profile["slurm-status-command"] = "squeue"
    # Test jobs last seconds; the profile's pauses are sized for real clusters. The executor
    # waits this long after a job ended, then 10 s longer each time nothing else has: a wait a
    # little over one test job's run (start-up included) finds a stage finished at once.
    profile["slurm-init-seconds-before-status-checks"] = 20
    profile["seconds-between-status-checks"] = 20
    profile["latency-wait"] = 5
    folder = directory / "profile"
    folder.mkdir()
    (folder / "config.yaml").write_text(yaml.safe_dump(profile))
    return folder


def run_snakemake(config: Path, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess:
    """Build TARGET for `config` in its folder; never raises on a failed run."""
    command = [SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(config.parent),
               "--configfile", str(config), *extra, TARGET]
    env = {**env, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=420,
                          cwd=config.parent)


def run_on_slurm(config: Path, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess:
    """Build TARGET through the cluster profile (a test copy in the config's folder)."""
    profile = config.parent / "profile"
    if not profile.exists():
        profile = cluster_profile(config.parent)
    return run_snakemake(config, env, "--profile", str(profile), "--workflow-profile", "none",
                         *extra)


def submissions(done: subprocess.CompletedProcess) -> list[tuple[str, str]]:
    """(SLURM job id, SLURM log path) of every sbatch the run reported."""
    return SUBMITTED.findall(done.stdout + done.stderr)


def queue_states(job_ids: list[str], env: dict[str, str]) -> dict[str, tuple[str, str]]:
    """job id -> (state, comment) from squeue, which keeps finished jobs for MinJobAge."""
    if not job_ids:
        return {}
    listing = subprocess.run(["squeue", "--noheader", "--states=all", "--format=%i|%T|%k",
                              f"--jobs={','.join(job_ids)}"], capture_output=True, text=True,
                             env=env, check=True, timeout=30).stdout
    rows = (line.split("|") for line in listing.splitlines() if line.strip())
    return {job_id: (state, comment) for job_id, state, comment in rows}


def show(capsys, title: str, states: dict[str, tuple[str, str]]) -> None:
    """Print the sbatch jobs a run went through, past pytest's capture (into the CI log)."""
    with capsys.disabled():
        print(f"\n{title}: {len(states)} sbatch job(s)")
        for job_id, (state, comment) in sorted(states.items(), key=lambda kv: int(kv[0])):
            print(f"  SLURM job {job_id:>4}  {state:<10} {comment}")


def assert_same_outputs(results: Path, expected: Path) -> None:
    """Every Parquet file under scores/ and report/ exists in both and is exactly equal."""
    def parquet_files(root: Path) -> list[Path]:
        return sorted(p.relative_to(root) for sub in ("scores", "report")
                      for p in (root / sub).rglob("*.parquet"))

    files = parquet_files(expected)
    assert files, f"no Parquet outputs under {expected}"
    assert parquet_files(results) == files
    for name in files:
        assert_frame_equal(pl.read_parquet(results / name), pl.read_parquet(expected / name),
                           check_exact=True)


# The settings the workflow runs with by default (config.schema.yaml: precision auto), so the
# corrupt shard lands in the cache folder the embedding job really reads.
WORKFLOW_EMBEDDING = EmbeddingSettings(precision="auto")


def private_cache(table: Path, directory: Path) -> Path:
    """A cache holding just the slice's vectors, copied from the shared one; returns its root."""
    key = WORKFLOW_EMBEDDING.key()
    wanted = pa.array(sorted({text_hash(t) for t in pl.read_parquet(table)["text"].to_list()}))
    parts = [pq.read_table(shard, columns=["text_hash", "vector"])
             for shard in sorted((EMBEDDING_CACHE / key).glob("*.parquet"))]
    parts = [part.filter(pc.is_in(part["text_hash"], value_set=wanted)) for part in parts]
    write_table(pa.concat_tables(parts), directory / key / "slice.parquet")
    return directory


@dataclass
class ClusterRuns:
    """A run that fails on a corrupt cache shard, and the run that resumes after the fix."""

    failed: subprocess.CompletedProcess
    failed_states: dict[str, tuple[str, str]]
    failed_logs: dict[str, str]  # logs the failed run's errors point to -> text before rerun
    corrupt: Path
    pool_kept: bool
    half_written: list[Path]
    resumed: subprocess.CompletedProcess
    resumed_states: dict[str, tuple[str, str]]
    results: Path


@pytest.fixture(scope="module")
def cluster_runs(slurm, table, local_results, tmp_path_factory) -> ClusterRuns:
    """The slice through the cluster profile, twice: the embedding job fails on bad input (a
    corrupt shard in the embedding cache); the shard is removed and the run resumes.

    Between them every job up to the report runs through sbatch once, which keeps this module
    within its time budget on two cores (each stage of jobs costs a SLURM round trip)."""
    directory = tmp_path_factory.mktemp("cluster")
    # After the local run (local_results), the shared cache holds every text of the slice.
    cache = private_cache(table, directory / "cache")
    corrupt = cache / WORKFLOW_EMBEDDING.key() / "corrupt.parquet"
    corrupt.write_bytes(b"not a parquet file")
    config = write_config(directory, table, embedding={"cache_dir": str(cache)})
    results = directory / "results"

    failed = run_on_slurm(config, slurm)
    failed_states = queue_states([job_id for job_id, _ in submissions(failed)], slurm)
    named = re.findall(r"log: (\S+\.log) \(check log file", failed.stdout + failed.stderr)
    failed_logs = {log: Path(log).read_text() for log in named if Path(log).is_file()}
    pool_kept = (results / "pool" / "correctness.parquet").exists()
    half_written = sorted(results.rglob("*.tmp"))

    corrupt.unlink()
    resumed = run_on_slurm(config, slurm, "--rerun-incomplete")
    resumed_states = queue_states([job_id for job_id, _ in submissions(resumed)], slurm)
    return ClusterRuns(failed, failed_states, failed_logs, corrupt, pool_kept, half_written,
                       resumed, resumed_states, results)


def test_failed_job_reports_its_logs_and_stops_cleanly(cluster_runs: ClusterRuns, capsys):
    runs = cluster_runs
    show(capsys, "SLURM run with a corrupt cache shard", runs.failed_states)
    output = runs.failed.stdout + runs.failed.stderr
    assert runs.failed.returncode != 0, output
    assert "Exiting because a job execution failed" in output
    # The error names the failed job's logs (its rule's and SLURM's); both say which file is
    # bad and what is wrong with it.
    fault = f"{runs.corrupt}: cannot read as Parquet"
    rule_logs = [text for log, text in runs.failed_logs.items() if "/slurm_logs/" not in log]
    assert any(fault in text for text in rule_logs), output
    slurm_logs = [text for log, text in runs.failed_logs.items() if "/slurm_logs/" in log]
    assert any(fault in text for text in slurm_logs), output
    # It stopped cleanly: nothing of it left in the queue, finished work kept, nothing
    # half-written.
    states = {state for state, _ in runs.failed_states.values()}
    assert "FAILED" in states and not states & {"PENDING", "RUNNING", "COMPLETING"}, states
    assert runs.pool_kept
    assert not runs.half_written, runs.half_written


def test_resumed_run_goes_through_sbatch_and_equals_local_run(cluster_runs: ClusterRuns,
                                                                local_results: Path, capsys):
    runs = cluster_runs
    show(capsys, "SLURM run resumed after the fix", runs.resumed_states)
    assert runs.resumed.returncode == 0, f"{runs.resumed.stdout}\n{runs.resumed.stderr}"
    jobs = submissions(runs.resumed)
    assert jobs and len(runs.resumed_states) == len(jobs), (jobs, runs.resumed_states)
    assert {state for state, _ in runs.resumed_states.values()} == {"COMPLETED"}
    comments = [comment for _, comment in runs.resumed_states.values()]
    failed = {comment for state, comment in runs.failed_states.values() if state == "FAILED"}
    # Resumed: what finished before is not submitted again; what failed is.
    assert not any(c.startswith("rule_pool_") for c in comments), "the pool was built again"
    assert failed <= set(comments), (failed, comments)
    # Tiny rules share an sbatch (one for the pool's tables, one for the embeddings, one for
    # the chain from the smoother to the report); the neighbour search gets one per task.
    first = [comment for _, comment in runs.failed_states.values()]
    assert sum(c.startswith("rule_pool_") for c in first) == 1, first
    assert sum(c.startswith("rule_embeddings_") for c in comments) == 1, comments
    assert sum(c.startswith("rule_scores_") for c in comments) == 1, comments
    assert sum(c.startswith("rule_find_neighbours_") for c in comments) == SLICE["datasets"]
    assert_same_outputs(runs.results, local_results)
