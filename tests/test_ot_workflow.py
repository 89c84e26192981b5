"""The workflow with `smoother: {descriptor: ot, bandwidth: auto}` on the 6-subject x 8-model
slice of helm_mmlu: the distance matrix (rules/distances.smk), the fitted bandwidth
(rules/bandwidth.smk) and the scores it leads to.

One module fixture builds everything (about 2.5 minutes on 2 cores): first the distances
alone with `distances.max_points: 50`, twice (every slice subject has 100 to 265 inputs, under
the default 500, so only a small max_points makes the seeded subsample run), then, in the same
folder, the run with the default max_points up to the scores and the ablation.
"""

from __future__ import annotations

import io
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import ot
import polars as pl
import pytest

from conftest import mmlu_slice, run_workflow, write_config

pytestmark = pytest.mark.slow

DESCRIPTOR_K = 19
SUBSAMPLE = 50
SEED = 0
OT_SETTINGS = {"descriptor": "ot", "bandwidth": "auto", "descriptor_k": DESCRIPTOR_K}
DISTANCE_COLUMNS = ["task", "dataset", "distance", "task_u"]
ABLATION_VARIANT = "strict, ot, auto bandwidth"
# Both jobs of a pair see the same clouds: a task's subsample depends on (seed, task name,
# cloud size) only, never on the job (llmrouter.distances.subsample), so D(a, b) and D(b, a)
# are one transport problem with its cost matrix transposed, and only the float rounding of the
# network simplex can tell them apart (8e-16 measured). 1e-9 leaves room for that and none for
# a subsample drawn per job (at 50 points that moved a distance by 0.04).
SYMMETRY_TOLERANCE = 1e-9
# A cloud against itself: the identity plan at cost 0; cosine_cost renormalises in float64 so a
# point's cost to itself is ~1e-16 (2.7e-16 measured); float32 norms leave ~1e-8.
DIAGONAL_TOLERANCE = 1e-12


@dataclass(frozen=True)
class OtRun:
    results: Path
    datasets: list[str]
    # Relative path -> bytes of results/distances.parquet and results/distances/*.parquet,
    # from the two max_points 50 runs.
    subsampled: tuple[dict[str, bytes], dict[str, bytes]]


def distance_files(results: Path) -> dict[str, bytes]:
    paths = [results / "distances.parquet", *sorted((results / "distances").glob("*.parquet"))]
    return {str(p.relative_to(results)): p.read_bytes() for p in paths}


@pytest.fixture(scope="module")
def ot_run(tmp_path_factory) -> OtRun:
    work = tmp_path_factory.mktemp("ot")
    table = work / "slice.parquet"
    frame = mmlu_slice()
    frame.write_parquet(table)
    datasets = sorted(frame["dataset"].unique().to_list())
    results = work / "results"
    matrix = str(results / "distances.parquet")
    # Both configs in one folder, so the second reuses the first's embeddings and neighbours.
    subsampled_config = write_config(work, table, smoother=OT_SETTINGS,
                                     distances={"max_points": SUBSAMPLE, "seed": SEED})
    subsampled_config = subsampled_config.rename(work / "subsampled.yaml")
    run_workflow(subsampled_config, matrix)
    first = distance_files(results)
    # The distance jobs again from nothing (their inputs stay).
    (results / "distances.parquet").unlink()
    shutil.rmtree(results / "distances")
    run_workflow(subsampled_config, matrix)
    second = distance_files(results)
    # The default max_points: the changed setting reruns every distance job.
    config = write_config(work, table, smoother=OT_SETTINGS)
    run_workflow(config, matrix, str(results / "smoother" / "bandwidth.parquet"),
                 str(results / "report" / "ablation_scores.parquet"),
                 *[str(results / "scores" / f"{name}.parquet") for name in datasets])
    return OtRun(results, datasets, (first, second))


def square(matrix: pl.DataFrame, datasets: list[str]) -> np.ndarray:
    """(n, n) distances, rows the tasks and columns the datasets, both in `datasets` order."""
    wide = matrix.pivot(on="dataset", index="task", values="distance")
    return wide.sort("task").select(datasets).to_numpy()


def task_clouds(results: Path, datasets: list[str]) -> dict[str, np.ndarray]:
    """Each task's unit-norm float64 embeddings, in the pool's row order."""
    from llmrouter.store import pool_embeddings, read_pool

    pool = read_pool(results / "pool" / "correctness.parquet", results / "pool" / "models.parquet")
    vectors = pool_embeddings(pool, {d: results / "embeddings" / f"{d}.parquet"
                                     for d in datasets}).astype(np.float64)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return {name: vectors[pool.rows(name)] for name in datasets}


def exact_ot(a: np.ndarray, b: np.ndarray) -> float:
    """The exact transport cost between uniform clouds of unit vectors, cost 1 - cosine."""
    cost = np.maximum(1.0 - a @ b.T, 0.0)
    return float(ot.emd2(np.full(len(a), 1 / len(a)), np.full(len(b), 1 / len(b)), cost,
                         numItermax=1_000_000))


def check_matrix(matrix: pl.DataFrame, datasets: list[str]) -> np.ndarray:
    """The contract of results/distances.parquet (collect_distances): one row per (task,
    dataset) pair of benchmark tasks, sorted by task then dataset, zero diagonal, symmetric.
    Returns the square."""
    assert matrix.columns == DISTANCE_COLUMNS
    pairs = [(t, d) for t in datasets for d in datasets]
    assert matrix.select("task", "dataset").rows() == pairs, "not one row per (task, dataset)"
    distances = square(matrix, datasets)
    diagonal = np.abs(np.diag(distances)).max()
    assert diagonal < DIAGONAL_TOLERANCE, f"a task is {diagonal:.3g} from itself"
    asymmetry = np.abs(distances - distances.T).max()
    assert asymmetry < SYMMETRY_TOLERANCE, f"D(a, b) and D(b, a) differ by {asymmetry:.3g}"
    return distances


def test_ot_distance_matrix_holds_every_task_pair_once(ot_run):
    """results/distances.parquet: the contract above; each task's own file (its job's output)
    holds its row of the matrix and nothing else; the distances are the exact OT cost
    (1 - cosine ground cost) between the whole clouds, as no slice subject reaches max_points."""
    results, datasets = ot_run.results, ot_run.datasets
    matrix = pl.read_parquet(results / "distances.parquet")
    distances = check_matrix(matrix, datasets)
    rows = sorted((results / "distances").glob("*.parquet"))
    assert [p.stem for p in rows] == datasets
    for path in rows:
        row = pl.read_parquet(path)
        assert row.equals(matrix.filter(pl.col("task") == path.stem)), (
            f"{path.name} is not its task's rows of distances.parquet")
    clouds = task_clouds(results, datasets)
    expected = np.array([[exact_ot(clouds[t], clouds[d]) for d in datasets] for t in datasets])
    error = np.abs(distances - expected).max()
    assert error < 1e-9, f"distances are off the exact OT cost by {error:.3g}"


def test_ot_rows_carry_the_knn_descriptor_of_their_neighbour_lists(ot_run):
    """task_u of every row of a task is u(task): the mean over its inputs of the mean cosine
    distance to their DESCRIPTOR_K nearest pool inputs of other tasks (the neighbour lists of
    results/neighbours/{task}.parquet, padding entries (index -1) skipped), clipped at 1e-7."""
    matrix = pl.read_parquet(ot_run.results / "distances.parquet")
    for name in ot_run.datasets:
        lists = pl.read_parquet(ot_run.results / "neighbours" / f"{name}.parquet")
        index = np.array(lists["neighbour_index"].to_list())
        distance = np.array(lists["distance"].to_list(), dtype=np.float64)
        nearest = np.array([d[i >= 0][:DESCRIPTOR_K] for i, d in zip(index, distance)])
        expected = np.maximum(nearest, 1e-7).mean()
        task_u = matrix.filter(pl.col("task") == name)["task_u"].to_numpy()
        # The lists hold float32 distances, averaged in float32 by the workflow (5e-8 off the
        # float64 mean measured); one neighbour more or fewer moves u by ~1e-3.
        error = np.abs(task_u - expected).max()
        assert error < 1e-6, f"{name}: task_u is {error:.3g} off u = {expected:.6f}"


def test_ot_auto_bandwidth_is_chosen_on_the_default_grid(ot_run):
    """results/smoother/bandwidth.parquet: one row per task and one for new tasks (task null),
    descriptor ot, auto true, every bandwidth a value of bandwidth.DEFAULT_GRID, and each task's
    the one the ablation's "strict, ot, auto bandwidth" variant chose for it."""
    from llmrouter.bandwidth import DEFAULT_GRID

    fitted = pl.read_parquet(ot_run.results / "smoother" / "bandwidth.parquet")
    assert fitted["task"].to_list() == [*ot_run.datasets, None]
    assert fitted["descriptor"].to_list() == ["ot"] * fitted.height
    assert fitted["auto"].all(), f"auto: {fitted['auto'].to_list()}"
    off_grid = [b for b in fitted["bandwidth"] if b not in DEFAULT_GRID]
    assert not off_grid, f"bandwidths off the grid: {off_grid}"
    ablation = pl.read_parquet(ot_run.results / "report" / "ablation_scores.parquet")
    chosen = (ablation.filter(pl.col("variant") == ABLATION_VARIANT)
              .group_by("task").agg(pl.col("bandwidth").unique()).sort("task"))
    fitted_by_task = dict(zip(fitted["task"][:-1], fitted["bandwidth"][:-1]))
    assert dict(zip(chosen["task"], chosen["bandwidth"].to_list())) == {
        task: [b] for task, b in fitted_by_task.items()}, "the ablation chose other bandwidths"


def test_ot_scores_equal_the_ablation_variant_and_the_kernel_over_the_ot_row(ot_run):
    """Each task's scores are the ablation's "strict, ot, auto bandwidth" rows (seed 0), column
    for column; and p(t, m) is the Gaussian-kernel mean of acc(d, m) over the pairs t is scored
    with (strict: computed with t out of every pool, d != t), weights
    exp(-D(t, d)^2 / (2 sigma_t^2)), D from t's OT row and sigma_t from bandwidth.parquet."""
    results = ot_run.results
    ablation = pl.read_parquet(results / "report" / "ablation_scores.parquet").filter(
        pl.col("variant") == ABLATION_VARIANT)
    pairs = pl.read_parquet(results / "smoother" / "pairs.parquet")
    fitted = pl.read_parquet(results / "smoother" / "bandwidth.parquet")
    for name in ot_run.datasets:
        scores = pl.read_parquet(results / "scores" / f"{name}.parquet")
        variant = ablation.filter(pl.col("task") == name).select(scores.columns)
        assert scores.equals(variant), f"{name}: scores differ from {ABLATION_VARIANT!r}"
        acc = (pairs.filter(pl.col("heldout") == name)
               .pivot(on="model", index="dataset", values="acc").sort("dataset"))
        row = pl.read_parquet(results / "distances" / f"{name}.parquet")
        distance = dict(zip(row["dataset"], row["distance"]))
        sigma = fitted.filter(pl.col("task") == name)["bandwidth"].item()
        weights = np.exp(-np.array([distance[d] for d in acc["dataset"]]) ** 2 / (2 * sigma**2))
        expected = weights @ acc.select(scores["model"].to_list()).to_numpy() / weights.sum()
        error = np.abs(scores["p"].to_numpy() - expected).max()
        assert error < 1e-12, f"{name}: p is {error:.3g} off the kernel over the OT row"


def test_subsampled_ot_distances_are_seeded_and_reproducible(ot_run):
    """With max_points 50 (below every slice subject's size) two runs of the distance jobs write
    byte-identical files, the matrix keeps its contract (symmetric: each task's subsample is the
    same in every job), and every distance is the exact OT cost between the seeded subsamples
    (llmrouter.distances.subsample), not between the whole clouds."""
    from llmrouter.distances import subsample

    first, second = ot_run.subsampled
    assert sorted(first) == sorted(second) == [
        "distances.parquet", *[f"distances/{d}.parquet" for d in ot_run.datasets]]
    differ = [name for name in first if first[name] != second[name]]
    assert not differ, f"two runs wrote different {differ}"
    matrix = pl.read_parquet(io.BytesIO(first["distances.parquet"]))
    distances = check_matrix(matrix, ot_run.datasets)
    full = square(pl.read_parquet(ot_run.results / "distances.parquet"), ot_run.datasets)
    off = ~np.eye(len(ot_run.datasets), dtype=bool)
    assert (np.abs(distances - full)[off] > 1e-6).all(), "the 50-point subsample changed nothing"
    clouds = task_clouds(ot_run.results, ot_run.datasets)
    drawn = {name: subsample(cloud, SUBSAMPLE, SEED, name) for name, cloud in clouds.items()}
    expected = np.array([[exact_ot(drawn[t], drawn[d]) for d in ot_run.datasets]
                         for t in ot_run.datasets])
    error = np.abs(distances - expected).max()
    assert error < 1e-9, f"distances are off the OT cost of the seeded subsamples by {error:.3g}"
