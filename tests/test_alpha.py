"""Labelled points of the scored task (alpha) and the in-process variants at their defaults."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from conftest import clustered_pool, mmlu_slice, run_workflow, write_config
from llmrouter import ablation, alpha
from llmrouter.routing import RoutingParams, pairs_from_frame, score_task, task_predictions

PARAMS = RoutingParams(k=3, descriptor_k=4, bandwidth=0.2)


@pytest.fixture(scope="module")
def synthetic():
    return clustered_pool(11, [20, 15, 25, 18], max(PARAMS.k, PARAMS.descriptor_k))


def test_number_and_draw_of_labelled_points():
    assert alpha.n_labelled(100, 0.04) == 4
    assert alpha.n_labelled(140, 0.04) == 5  # 5.6 points: whole points only, rounded down
    assert alpha.n_labelled(1534, 0.1) == 50  # capped
    assert alpha.n_labelled(100, 0.0) == 0
    assert alpha.n_labelled(100, 0.29) == 29  # 0.29 * 100 is 28.999999999999996 in floats
    labelled, rest = alpha.labelled_split(30, 0.1, seed=0, task="anatomy")
    assert len(labelled) == 3 and len(rest) == 27
    assert sorted([*labelled, *rest]) == list(range(30))
    again, _ = alpha.labelled_split(30, 0.1, seed=0, task="anatomy")
    np.testing.assert_array_equal(labelled, again)
    other = [alpha.labelled_split(30, 0.1, seed=s, task="anatomy")[0] for s in range(1, 6)]
    assert any(not np.array_equal(labelled, o) for o in other)
    with pytest.raises(ValueError):
        alpha.n_labelled(10, 1.5)


def test_alpha_zero_is_exactly_the_core_prediction(synthetic):
    pool, vectors, neighbours = synthetic
    for task in pool.datasets:
        labelled, rest = alpha.labelled_split(len(pool.rows(task)), 0.0, 0, task)
        g, u = alpha.labelled_predictions(neighbours[task], pool, task, None, labelled, rest,
                                          PARAMS.k, PARAMS.descriptor_k)
        g_core, u_core = task_predictions(neighbours[task], pool, PARAMS)
        np.testing.assert_array_equal(g, g_core)
        assert u == u_core


def test_labelled_points_join_the_pool_like_a_brute_force_search(synthetic):
    pool, vectors, neighbours = synthetic
    task = "d2"
    rows = pool.rows(task)
    labelled, rest = alpha.labelled_split(len(rows), 0.2, 3, task)
    assert len(labelled) == 5
    g, u = alpha.labelled_predictions(neighbours[task], pool, task, vectors[rows], labelled,
                                      rest, PARAMS.k, PARAMS.descriptor_k)
    allowed = pool.dataset_of != pool.datasets.index(task)
    allowed[rows[labelled]] = True
    dist = 1 - vectors[rows[rest]] @ vectors.T
    dist[:, ~allowed] = np.inf
    order = np.argsort(dist, axis=1, kind="stable")
    np.testing.assert_allclose(g, pool.correct[order[:, :PARAMS.k]].mean(axis=1))
    nearest = np.sort(dist, axis=1)[:, :PARAMS.descriptor_k]
    assert u == pytest.approx(np.maximum(nearest, 1e-7).mean(), rel=1e-5)
    assert g.shape == (len(rest), 3)


def test_merge_keeps_the_nearest_in_order():
    rows = np.array([[10, 11, 12]])
    dists = np.array([[0.1, 0.3, 0.5]], dtype=np.float32)
    merged_rows, merged = alpha.merge_labelled(rows, dists, np.array([7, 8]),
                                               np.array([[0.2, 0.6]]), 3)
    np.testing.assert_array_equal(merged_rows, [[10, 7, 11]])
    np.testing.assert_allclose(merged, [[0.1, 0.2, 0.3]])


def test_merge_orders_equal_distances_by_pool_row_as_the_search_does():
    # A text in two datasets is as near as its copy; knn.search takes the lower pool row
    # first, and the merged lists must agree with a search over the enlarged pool.
    rows = np.array([[10, 11, 12]])
    dists = np.array([[0.2, 0.2, 0.5]], dtype=np.float32)
    merged_rows, merged = alpha.merge_labelled(rows, dists, np.array([7, 30]),
                                               np.array([[0.2, 0.2]]), 4)
    np.testing.assert_array_equal(merged_rows, [[7, 10, 11, 30]])
    np.testing.assert_allclose(merged, [[0.2] * 4])


def test_default_variant_scores_as_the_workflow_does(synthetic):
    # score_task.py's computation, written out: pairs through the pairs table, p from the
    # knn smoother at the fixed bandwidth.
    from llmrouter.routing import pairs_frame, smoother_pairs

    pool, vectors, neighbours = synthetic
    params = replace(PARAMS, draws=200)
    pairs = ablation.all_pairs(pool, neighbours, params)
    inputs = ablation.Inputs(pool, neighbours, pairs, None, vectors)
    table = pl.concat([pairs_frame(smoother_pairs(pool, neighbours, params, held), pool.models,
                                   held) for held in [None, *pool.datasets]])
    assert table.equals(pairs)
    for mode in ["strict", "reference"]:
        variant = ablation.Variant(mode, mode=mode, bandwidth=params.bandwidth)
        mine = ablation.score_variant(inputs, variant, replace(params, mode=mode))
        accuracy = pool.task_accuracy()
        for code, task in enumerate(pool.datasets):
            others = [i for i in range(len(pool.datasets)) if i != code]
            g, u = task_predictions(neighbours[task], pool, params)
            task_pairs = pairs_from_frame(table, pool.models, task if mode == "strict" else None,
                                          drop=task)
            bma = accuracy[others].mean(axis=0) if mode == "strict" else accuracy.mean(axis=0)
            core = score_task(task, g, u, task_pairs, bma,
                              pool.correct[pool.dataset_of != code].mean(axis=0), pool.models,
                              replace(params, mode=mode), pool.correct[pool.rows(task)])
            got = mine.filter(pl.col("task") == task).select(core.columns)
            assert got.equals(core), (mode, task)


@pytest.fixture(scope="module")
def slice_run(tmp_path_factory) -> Path:
    """The workflow on 4 subjects x 6 models with costs: ablation, summary and frontier."""
    work = tmp_path_factory.mktemp("ablation")
    table = work / "slice.parquet"
    frame = mmlu_slice(datasets=4, models=6)
    frame.write_parquet(table)
    costs = {m: float(i + 1) for i, m in enumerate(sorted(frame["model"].unique()))}
    config = write_config(work, table, ablation={"alphas": [0.1], "repeats": 2},
                          cost={"models": costs, "epsilons": [0.0, 0.05], "unit": "rank"})
    results = work / "results"
    run_workflow(config, *(str(results / "report" / name) for name in
                           ["ablation.md", "summary.parquet", "frontier.parquet"]))
    return results


@pytest.mark.slow
def test_ablation_default_variant_reproduces_the_workflow_scores(slice_run: Path):
    results = slice_run
    scores = pl.concat([pl.read_parquet(p) for p in sorted((results / "scores").glob("*.parquet"))])
    variants = pl.read_parquet(results / "report" / "ablation_scores.parquet")
    strict = variants.filter(pl.col("variant") == "strict").select(scores.columns)
    assert strict.sort("task", "model").equals(scores.sort("task", "model"))
    summary = pl.read_parquet(results / "report" / "summary.parquet")
    row = pl.read_parquet(results / "report" / "ablation.parquet").filter(
        pl.col("variant") == "strict")
    for method, accuracy in summary.select("method", "mean_accuracy").iter_rows():
        assert row[method].item() == pytest.approx(accuracy, abs=1e-12), method
    alpha_rows = pl.read_parquet(results / "report" / "ablation.parquet").filter(
        pl.col("alpha") == 0.1)
    assert (alpha_rows["repeats"] == 2).all()
    assert (results / "report" / "ablation.md").read_text().count("| strict, alpha 0.1 |") == 1


@pytest.mark.slow
def test_frontier_from_the_workflow(slice_run: Path):
    frontier = pl.read_parquet(slice_run / "report" / "frontier.parquet")
    assert frontier.columns == ["method", "epsilon", "mean_accuracy", "mean_cost"]
    assert set(frontier["method"]) == {"s3", "oracle", "per_instance"}
    oracle = frontier.filter(pl.col("method") == "oracle").sort("epsilon")
    summary = pl.read_parquet(slice_run / "report" / "summary.parquet")
    # epsilon 0 with the true accuracy is the oracle's pick (up to ties broken by cost)
    assert oracle["mean_accuracy"][0] == pytest.approx(
        summary.filter(pl.col("method") == "oracle")["mean_accuracy"].item())
    # a wider epsilon never costs more
    assert oracle["mean_cost"][1] <= oracle["mean_cost"][0]
    assert (slice_run / "report" / "frontier.png").stat().st_size > 1000
