"""Leave-one-task-out routing against a brute-force computation on a synthetic pool."""

import numpy as np
import polars as pl
import pytest

from llmrouter import knn, scores, smoother
from llmrouter.artifacts import InputError, write_table
from llmrouter.pool import Pool, check_neighbour_supply
from llmrouter.routing import (
    METHODS,
    Pairs,
    RoutingParams,
    all_smoother_pairs,
    pairs_frame,
    pairs_from_frame,
    pairs_table,
    fitted_bandwidth,
    score_task,
    smoother_heldouts,
    smoother_pairs,
    task_baselines,
    task_descriptor,
    task_predictions,
    task_scores,
)
from llmrouter.store import write_neighbours, write_pool
from llmrouter.task_artifacts import score_from_artifacts

PARAMS = RoutingParams(k=3, descriptor_k=4, bandwidth=0.2)


@pytest.fixture(scope="module")
def synthetic():
    rng = np.random.default_rng(7)
    sizes = [12, 15, 9, 14, 11]
    centres = rng.normal(size=(len(sizes), 6))
    vectors = np.vstack([c + 0.6 * rng.normal(size=(n, 6)) for c, n in zip(centres, sizes)])
    vectors = knn.normalize(vectors)
    dataset_of = np.repeat(np.arange(len(sizes)), sizes).astype(np.int32)
    correct = (rng.random((len(vectors), 4)) < np.array([0.3, 0.5, 0.6, 0.8])).astype(np.uint8)
    pool = Pool([f"d{i}" for i in range(len(sizes))], dataset_of,
                np.array([f"x{i}" for i in range(len(vectors))]), ["m0", "m1", "m2", "m3"],
                correct)
    k = max(PARAMS.k, PARAMS.descriptor_k)
    neighbours = {
        name: knn.search(vectors[pool.rows(name)], vectors, dataset_of, k, exclude_dataset=i)
        for i, name in enumerate(pool.datasets)
    }
    return pool, vectors, neighbours


def brute_pairs(pool, vectors, heldout, params=PARAMS):
    """acc(d, m) and u(d) with a full distance matrix, pool = all but d and heldout."""
    us, accs = [], []
    for i, name in enumerate(pool.datasets):
        if name == heldout:
            continue
        allowed = pool.dataset_of != i
        if heldout is not None:
            allowed &= pool.dataset_of != pool.datasets.index(heldout)
        dist = 1 - vectors[pool.dataset_of == i] @ vectors.T
        dist[:, ~allowed] = np.inf
        order = np.argsort(dist, axis=1)
        g = pool.correct[order[:, : params.k]].mean(axis=1)
        us.append(np.maximum(np.sort(dist, axis=1)[:, : params.descriptor_k], 1e-7).mean())
        accs.append(((g > params.threshold) == pool.correct[pool.dataset_of == i]).mean(axis=0))
    return np.array(us), np.array(accs)


@pytest.mark.parametrize("threshold", [0.5, 0.3, 2 / 3])
@pytest.mark.parametrize("heldout", [None, "d0", "d3"])
def test_smoother_pairs_match_brute_force(synthetic, heldout, threshold):
    # 2/3 = two of the 3 neighbours: g equal to the threshold is not "predicted correct"
    pool, vectors, neighbours = synthetic
    params = RoutingParams(k=3, descriptor_k=4, bandwidth=0.2, threshold=threshold)
    pairs = smoother_pairs(pool, neighbours, params, heldout)
    u, acc = brute_pairs(pool, vectors, heldout, params)
    assert heldout not in pairs.datasets and len(pairs.datasets) == len(u)
    np.testing.assert_allclose(pairs.u, u, rtol=1e-5)
    np.testing.assert_allclose(pairs.acc, acc)


def test_pairs_carry_s1_and_s2_of_each_pool(synthetic):
    # S1 and S2 of every pair, as in a direct computation and as all_smoother_pairs shares it
    pool, _, neighbours = synthetic
    heldouts = [None, *pool.datasets]
    shared = all_smoother_pairs(pool, neighbours, PARAMS, heldouts)
    for heldout in heldouts:
        one = smoother_pairs(pool, neighbours, PARAMS, heldout)
        exclude = () if heldout is None else (pool.datasets.index(heldout),)
        for i, name in enumerate(one.datasets):
            g, _ = task_predictions(neighbours[name], pool, PARAMS, exclude)
            np.testing.assert_array_equal(one.s1[i], scores.s1(g, PARAMS.k))
            np.testing.assert_array_equal(one.s2[i], scores.s2(g, PARAMS.threshold))
        np.testing.assert_array_equal(shared[heldout].s1, one.s1)
        np.testing.assert_array_equal(shared[heldout].s2, one.s2)
        np.testing.assert_array_equal(shared[heldout].acc, one.acc)


@pytest.mark.parametrize("k, descriptor_k", [(3, 4), (4, 2), (1, 1)])
def test_task_descriptor_is_task_predictions_u_whatever_k(synthetic, k, descriptor_k):
    pool, vectors, neighbours = synthetic
    for name in pool.datasets:
        _, u = task_predictions(neighbours[name], pool, RoutingParams(k=k,
                                                                      descriptor_k=descriptor_k))
        assert task_descriptor(neighbours[name], descriptor_k) == u
    # and it is the mean distance to the nearest descriptor_k inputs of the other datasets
    mine = pool.dataset_of == 0
    dist = np.sort(1 - vectors[mine] @ vectors[~mine].T, axis=1)[:, :descriptor_k]
    assert task_descriptor(neighbours["d0"], descriptor_k) == pytest.approx(
        np.maximum(dist, 1e-7).mean(), abs=1e-6)


def test_pairs_round_trip_through_frame(synthetic):
    pool, _, neighbours = synthetic
    pairs = smoother_pairs(pool, neighbours, PARAMS, "d2")
    frame = pairs_frame(pairs, pool.models, "d2")
    back = pairs_from_frame(frame, pool.models, "d2", drop="d4")
    assert back.datasets == [d for d in pairs.datasets if d != "d4"]
    keep = [pairs.datasets.index(d) for d in back.datasets]
    np.testing.assert_allclose(back.acc, pairs.acc[keep])
    np.testing.assert_allclose(back.u, pairs.u[keep])


def test_score_task_combines_the_pieces(synthetic):
    pool, _, neighbours = synthetic
    task = "d1"
    g, u = task_predictions(neighbours[task], pool, PARAMS)
    pairs = smoother_pairs(pool, neighbours, PARAMS, task)
    correct = pool.correct[pool.rows(task)]
    bma_scores = pool.task_accuracy()[[0, 2, 3, 4]].mean(axis=0)
    tiebreak = pool.correct[pool.dataset_of != 1].mean(axis=0)
    frame = score_task(task, g, u, pairs, bma_scores, tiebreak, pool.models, PARAMS, correct)
    assert frame.height == 4 and frame["model"].to_list() == pool.models
    p = smoother.smooth(u, pairs.u, pairs.acc, PARAMS.bandwidth)
    np.testing.assert_allclose(frame["s1"], scores.s1(g, PARAMS.k))
    np.testing.assert_allclose(frame["p"], p)
    np.testing.assert_allclose(frame["s3"], scores.s3(scores.s2(g), p))
    np.testing.assert_allclose(frame["accuracy"], correct.mean(axis=0))
    for method in METHODS:
        assert frame[f"pick_{method}"].sum() == 1, method
    assert frame.filter("pick_oracle")["accuracy"][0] == frame["accuracy"].max()
    # the same inputs give the same picks (seeded draws)
    again = score_task(task, g, u, pairs, bma_scores, tiebreak, pool.models, PARAMS, correct)
    assert again.equals(frame)


def test_unlabelled_task_has_null_accuracy_and_no_oracle(synthetic):
    pool, vectors, _ = synthetic
    rng = np.random.default_rng(3)
    queries = knn.normalize(rng.normal(size=(5, 6)))
    nb = knn.search(queries, vectors, pool.dataset_of, 4)
    g, u = task_predictions(nb, pool, PARAMS)
    pairs = smoother_pairs(pool, {n: knn.search(vectors[pool.rows(n)], vectors, pool.dataset_of,
                                               4, exclude_dataset=i)
                                  for i, n in enumerate(pool.datasets)}, PARAMS)
    frame = score_task("new", g, u, pairs, pool.task_accuracy().mean(0),
                       pool.correct.mean(0), pool.models, PARAMS)
    assert frame["accuracy"].null_count() == 4
    assert frame["pick_oracle"].sum() == 0 and frame["pick_s3"].sum() == 1


def test_models_with_equal_s1_are_picked_by_the_tie_rule_not_by_rounding():
    # a predicts 1 and 4 of 5 neighbours right, b 2 and 3: S1 = 0.5 for both, and the pool's
    # accuracy (the tiebreak) favours a. Float32 sums of g would rank b first by 1.5e-8.
    correct = np.array([[1, 0, 0, 0, 0, 1, 1, 1, 1, 0],
                        [1, 1, 0, 0, 0, 1, 1, 1, 0, 0]], dtype=np.uint8).T
    g = knn.predict_correctness(np.arange(10).reshape(2, 5), correct)
    pairs = Pairs(["d"], np.array([0.3]), np.array([[0.8, 0.7]]))
    frame = score_task("t", g, 0.3, pairs, np.array([0.5, 0.6]), np.array([0.7, 0.4]),
                       ["a", "b"], RoutingParams(k=5, draws=50))
    assert frame["s1"].to_list() == [0.5, 0.5]
    assert frame["pick_s1"].to_list() == [True, False]


@pytest.mark.parametrize("mode", ["strict", "reference"])
def test_task_scores_is_score_task_on_the_workflow_artifacts(synthetic, mode):
    pool, _, neighbours = synthetic
    params = RoutingParams(k=3, descriptor_k=4, bandwidth=0.2, mode=mode)
    heldouts = [None] + (pool.datasets if mode == "strict" else [])
    every = all_smoother_pairs(pool, neighbours, params, heldouts)
    table = pl.concat([pairs_frame(every[h], pool.models, h) for h in heldouts])
    task, code = "d1", 1
    bma_scores, tiebreak = task_baselines(pool, task, mode)
    accuracy = pool.task_accuracy()
    others = [0, 2, 3, 4] if mode == "strict" else [0, 1, 2, 3, 4]
    np.testing.assert_allclose(bma_scores, accuracy[others].mean(axis=0))
    np.testing.assert_allclose(tiebreak, pool.correct[pool.dataset_of != code].mean(axis=0))
    pairs = pairs_from_frame(table, pool.models, task if mode == "strict" else None, drop=task)
    g, u = task_predictions(neighbours[task], pool, params)
    expected = score_task(task, g, u, pairs, bma_scores, tiebreak, pool.models, params,
                          pool.correct[pool.rows(task)])
    assert task_scores(task, neighbours[task], pool, table, params).equals(expected)


def test_task_scores_reads_the_fitted_bandwidth_of_its_task(synthetic):
    pool, _, neighbours = synthetic
    params = RoutingParams(k=3, descriptor_k=4, bandwidth="auto")
    every = all_smoother_pairs(pool, neighbours, params, [None, "d1"])
    table = pl.concat([pairs_frame(every[h], pool.models, h) for h in (None, "d1")])
    fitted = pl.DataFrame({"task": ["d0", "d1", None], "bandwidth": [0.05, 0.3, 0.1]})
    assert fitted_bandwidth(fitted, "d1", pool.datasets) == 0.3
    assert fitted_bandwidth(fitted, "new", pool.datasets) == 0.1
    frame = task_scores("d1", neighbours["d1"], pool, table, params, fitted)
    g, u = task_predictions(neighbours["d1"], pool, params)
    pairs = pairs_from_frame(table, pool.models, "d1", drop="d1")
    np.testing.assert_allclose(frame["p"], smoother.smooth(u, pairs.u, pairs.acc, 0.3))
    with pytest.raises(ValueError, match="fitted bandwidth table"):
        task_scores("d1", neighbours["d1"], pool, table, params)
    with pytest.raises(ValueError, match="pass p"):
        score_task("d1", g, u, pairs, np.zeros(4), np.zeros(4), pool.models, params)
    with pytest.raises(ValueError, match="2 rows"):
        fitted_bandwidth(pl.concat([fitted, fitted]), "d1", pool.datasets)


def test_s3_true_p_draws_do_not_depend_on_the_estimated_p(synthetic, monkeypatch):
    # S3's fallback check draws only when its pick differs from BMA. S3 with the true p must
    # get the same draws either way (its own stream), or its pick would move with the
    # smoother it does not use.
    import copy

    pool, _, neighbours = synthetic
    task = "d1"
    g, u = task_predictions(neighbours[task], pool, PARAMS)
    pairs = smoother_pairs(pool, neighbours, PARAMS, task)
    bma_scores, tiebreak = task_baselines(pool, task, "strict")
    correct = pool.correct[pool.rows(task)]
    seen = []
    real = scores.pick_s3

    def spy(s3, predicted, p, baseline, tiebreak, names, rng, *args):
        # the next draw, without taking it, and whether this check will draw
        seen.append((copy.deepcopy(rng).random(), scores.pick(s3, tiebreak, names) != baseline))
        return real(s3, predicted, p, baseline, tiebreak, names, rng, *args)

    monkeypatch.setattr(scores, "pick_s3", spy)
    outcomes = []
    # p = 0.5 makes every S3 0.5 (the pick is BMA's); p near 0 or 1 for another model makes
    # its S3 the largest.
    s2 = scores.s2(g)
    other = next(m for m in range(4) if m != scores.pick(bma_scores, tiebreak, pool.models)
                 and s2[m] != 0.5)
    pushed = np.full(4, 0.5)
    pushed[other] = 0.99 if s2[other] > 0.5 else 0.01
    for p in (np.full(4, 0.5), pushed):
        seen.clear()
        frame = score_task(task, g, u, pairs, bma_scores, tiebreak, pool.models, PARAMS,
                           correct, p)
        outcomes.append((seen[0][1], seen[1][0]))
    assert [drew for drew, _ in outcomes] == [False, True]  # S3's check draws only once
    assert outcomes[0][1] == outcomes[1][1]


@pytest.mark.parametrize("threshold", [0.5, 0.3, 2 / 3])
def test_score_task_columns_by_hand(synthetic, threshold):
    pool, _, neighbours = synthetic
    task = "d1"
    params = RoutingParams(k=3, descriptor_k=4, bandwidth=0.2, threshold=threshold,
                           fallback_share=0.0)
    g, u = task_predictions(neighbours[task], pool, params)
    pairs = smoother_pairs(pool, neighbours, params, task)
    # On the pool as it is every method picks m3 (accuracy 0.8). score_task takes the
    # baselines and labels as given, so they are rearranged for picks that only their own
    # score gives: BMA's scores with m1 and m3 swapped (BMA picks m1), the tiebreak reversed
    # (m0 first; S2's tie of m2 and m3 at threshold 0.3 goes to m2, S1 stays on m3), the
    # labels of m2 and m3 swapped (the oracle picks m2).
    bma_scores, tiebreak = task_baselines(pool, task, "strict")
    bma_scores, tiebreak = bma_scores[[0, 3, 2, 1]], tiebreak[::-1]
    correct = pool.correct[pool.rows(task)][:, [0, 1, 3, 2]]
    p = np.array([0.9, 0.2, 0.6, 0.75])
    frame = score_task(task, g, u, pairs, bma_scores, tiebreak, pool.models, params, correct, p)
    predicted = g > threshold  # strictly above
    s2 = predicted.mean(axis=0)
    p_true = (predicted == correct.astype(bool)).mean(axis=0)
    np.testing.assert_allclose(frame["s2"], s2)
    np.testing.assert_array_equal(frame["n_pos"], predicted.sum(axis=0))
    np.testing.assert_allclose(frame["p_true"], p_true)
    np.testing.assert_allclose(frame["s3"], p * s2 + (1 - p) * (1 - s2))
    np.testing.assert_allclose(frame["bma_score"], bma_scores)
    # without the fallback each S3 pick is the argmax of its own S3 (ties as in scores.pick)
    for column, s3 in (("pick_s3", p * s2 + (1 - p) * (1 - s2)),
                       ("pick_s3_true_p", p_true * s2 + (1 - p_true) * (1 - s2))):
        assert frame[column].to_list() == (
            np.arange(4) == scores.pick(s3, tiebreak, pool.models)).tolist(), column
    # and every other pick is the argmax of its own score, by the same tie rule
    for method, own in (("s1", scores.s1(g, params.k)), ("s2", s2), ("bma", bma_scores),
                        ("oracle", correct.mean(axis=0))):
        assert frame[f"pick_{method}"].to_list() == (
            np.arange(4) == scores.pick(own, tiebreak, pool.models)).tolist(), method


@pytest.mark.parametrize("mode", ["strict", "reference"])
def test_task_scores_of_a_new_task_use_the_whole_leave_one_task_out_pass(synthetic, mode):
    # A user's task outside the pool, in either mode: p from the smoother fitted on every
    # benchmark task's leave-one-task-out pair (no nested pool: nothing of it is in the pool),
    # BMA by the mean per-task accuracy over all benchmark tasks, and no labels.
    pool, vectors, neighbours = synthetic
    params = RoutingParams(k=3, descriptor_k=4, bandwidth=0.2, mode=mode)
    heldouts = smoother_heldouts(pool.datasets, mode)
    table = pairs_table(pool, neighbours, params, heldouts)
    queries = knn.normalize(np.random.default_rng(5).normal(size=(6, 6)))
    nb = knn.search(queries, vectors, pool.dataset_of, 4)
    frame = task_scores("new", nb, pool, table, params)
    full = smoother_pairs(pool, neighbours, params)
    assert full.datasets == pool.datasets
    g, u = task_predictions(nb, pool, params)
    np.testing.assert_allclose(frame["p"], smoother.smooth(u, full.u, full.acc, 0.2))
    whole = np.mean([pool.correct[pool.rows(d)].mean(axis=0) for d in pool.datasets], axis=0)
    np.testing.assert_allclose(frame["bma_score"], whole)
    assert frame["accuracy"].null_count() == 4 and frame["p_true"].null_count() == 4
    assert frame["pick_oracle"].sum() == 0 and frame["pick_s3_true_p"].sum() == 0


def test_baselines_of_a_new_task_use_the_whole_pool(synthetic):
    pool, _, _ = synthetic
    bma_scores, tiebreak = task_baselines(pool, "new", "strict")
    np.testing.assert_allclose(bma_scores, pool.task_accuracy().mean(axis=0))
    np.testing.assert_allclose(tiebreak, pool.correct.mean(axis=0))


def test_pairs_from_frame_follows_the_models_order_not_the_frames(synthetic):
    pool, _, neighbours = synthetic
    pairs = smoother_pairs(pool, neighbours, PARAMS)
    frame = pairs_frame(pairs, pool.models, None).sample(fraction=1.0, shuffle=True, seed=3)
    back = pairs_from_frame(frame, pool.models[::-1], None)
    np.testing.assert_allclose(back.acc, pairs.acc[:, ::-1])
    np.testing.assert_allclose(back.s1, pairs.s1[:, ::-1])


def test_score_from_artifacts_is_task_scores_on_the_files(synthetic, tmp_path):
    pool, _, neighbours = synthetic
    params = RoutingParams(k=3, descriptor_k=4, bandwidth="auto", descriptor="ot")
    every = all_smoother_pairs(pool, neighbours, params, [None, "d1"])
    table = pl.concat([pairs_frame(every[h], pool.models, h) for h in (None, "d1")])
    fitted = pl.DataFrame({"task": ["d1", None], "bandwidth": [0.3, 0.1]})
    row = {"d0": 0.4, "d2": 0.1, "d3": 0.9, "d4": 0.2}
    paths = {name: tmp_path / f"{name}.parquet"
             for name in ("pool", "models", "neighbours", "pairs", "bandwidth", "task_distances")}
    write_pool(pool, paths["pool"], paths["models"], {})
    write_neighbours(pool.instance_ids[pool.rows("d1")], neighbours["d1"], paths["neighbours"])
    write_table(table, paths["pairs"])
    write_table(fitted, paths["bandwidth"])
    write_table(pl.DataFrame({"task": ["d1"] * 4, "dataset": list(row),
                              "distance": list(row.values())}), paths["task_distances"])
    scored = score_from_artifacts("d1", params, **paths)
    expected = task_scores("d1", neighbours["d1"], pool, table, params, fitted, row)
    assert scored.scores.equals(expected)
    assert scored.pairs_table.equals(table)
    np.testing.assert_array_equal(scored.neighbours.index, neighbours["d1"].index)
    # Without the OT row the ot descriptor cannot smooth; the knn one never reads it.
    with pytest.raises(ValueError, match="needs the task's row of OT distances"):
        score_from_artifacts("d1", params, **{**paths, "task_distances": []})
    knn_params = RoutingParams(k=3, descriptor_k=4, bandwidth="auto")
    knn_scored = score_from_artifacts("d1", knn_params, **{**paths, "task_distances": []})
    assert knn_scored.scores.equals(
        task_scores("d1", neighbours["d1"], pool, table, knn_params, fitted))


def test_pairs_table_is_every_held_out_set_of_pairs(synthetic):
    pool, _, neighbours = synthetic
    assert smoother_heldouts(pool.datasets, "reference") == [None]
    heldouts = smoother_heldouts(pool.datasets, "strict")
    assert heldouts == [None, *pool.datasets]
    table = pairs_table(pool, neighbours, PARAMS, heldouts)
    # 5 datasets x 4 models with nothing held out, then 4 x 4 per held-out dataset
    assert table.height == 5 * 4 + 5 * 4 * 4
    # each set of pairs as smoother_pairs computes it alone (not all_smoother_pairs' sharing),
    # row by row: one per (dataset, model), in the pool's order of datasets and models
    expected = []
    for heldout in heldouts:
        one = smoother_pairs(pool, neighbours, PARAMS, heldout)
        expected += [(heldout, d, m, one.u[i], one.acc[i, j], one.s1[i, j], one.s2[i, j])
                     for i, d in enumerate(one.datasets) for j, m in enumerate(pool.models)]
    assert table.columns == ["heldout", "dataset", "model", "u", "acc", "s1", "s2"]
    assert table.rows() == expected


def test_pairs_table_checks_the_nested_pools_only_when_it_builds_them(synthetic):
    pool, _, neighbours = synthetic
    # 40 neighbours: d0's other datasets offer 49, but only 34 with the largest (15) out.
    params = RoutingParams(k=3, descriptor_k=40)
    with pytest.raises(InputError, match="one more left out"):
        pairs_table(pool, neighbours, params, smoother_heldouts(pool.datasets, "strict"))
    check_neighbour_supply(pool, "d0", 40, strict=False)  # what the search itself needs
