"""The smoother's variants: the OT descriptor, auto bandwidth, per-instance routing."""

import numpy as np
import polars as pl
import pytest

from conftest import REPO
from llmrouter import bandwidth, scores, smoother
from llmrouter.routing import Pairs, RoutingParams, pairs_frame, pairs_from_frame, smoother_p


def test_smooth_by_distance_is_kernel_weighted_mean():
    dist = np.array([0.0, 0.1, 0.4])
    acc = np.array([[0.9, 0.2], [0.7, 0.4], [0.1, 1.0]])
    sigma = 0.15
    w = np.exp(-(dist**2) / (2 * sigma**2))
    w /= w.sum()
    np.testing.assert_allclose(smoother.smooth_by_distance(dist, acc, sigma), w @ acc)
    # far pairs get no weight with a tiny bandwidth, the plain mean with a huge one
    np.testing.assert_allclose(smoother.smooth_by_distance(dist, acc, 1e-4), acc[0])
    np.testing.assert_allclose(smoother.smooth_by_distance(dist, acc, 1e6), acc.mean(axis=0))
    with pytest.raises(ValueError):
        smoother.distance_weights(dist, 0.0)


def test_knn_distances_give_the_papers_smoother():
    u = np.array([0.2, 0.35, 0.5])
    acc = np.array([[0.9], [0.6], [0.3]])
    np.testing.assert_allclose(smoother.smooth_by_distance(np.abs(0.3 - u), acc, 0.09),
                               smoother.smooth(0.3, u, acc, 0.09))


def test_smoother_p_by_descriptor():
    pairs = Pairs(["a", "b"], np.array([0.1, 0.5]), np.array([[1.0, 0.0], [0.0, 1.0]]))
    np.testing.assert_array_equal(smoother_p(0.3, pairs, "knn", 0.05),
                                  smoother.smooth(0.3, pairs.u, pairs.acc, 0.05))
    # OT: the task is near "b" whatever its u
    p = smoother_p(0.1, pairs, "ot", 0.05, {"a": 0.9, "b": 0.01, "c": 0.0})
    np.testing.assert_allclose(p, [0.0, 1.0], atol=1e-9)
    with pytest.raises(ValueError, match="OT distance"):
        smoother_p(0.1, pairs, "ot", 0.05, {"a": 0.9})
    with pytest.raises(ValueError, match="unknown descriptor"):
        smoother_p(0.1, pairs, "bogus", 0.05)
    # agreement: the task's own S1, S2; no pairs, no bandwidth (NaN is fine)
    g = np.array([[0.8, 0.2], [0.4, 0.6]])
    np.testing.assert_array_equal(smoother_p(0.1, pairs, "agreement", float("nan"), g=g),
                                  smoother.agreement_p(g))
    with pytest.raises(ValueError, match="predictions g"):
        smoother_p(0.1, pairs, "agreement", float("nan"))


def test_loo_predictions_leave_the_pair_out():
    u = np.array([0.0, 0.1, 1.0])
    acc = np.array([[0.2], [0.4], [0.9]])
    pred = bandwidth.loo_predictions(bandwidth.pair_distances_knn(u), acc, 0.05)
    # each pair is predicted by its nearest other pair; never by itself
    np.testing.assert_allclose(pred[:, 0], [0.4, 0.2, 0.4], atol=1e-6)
    w = np.exp(-np.array([0.1, 1.0]) ** 2 / (2 * 0.5**2))
    expected = (w / w.sum()) @ np.array([0.4, 0.9])
    assert bandwidth.loo_predictions(bandwidth.pair_distances_knn(u), acc, 0.5)[0, 0] == \
        pytest.approx(expected)


def test_loo_predictions_stay_finite_for_an_isolated_pair():
    # With the grid's smallest bandwidth every weight of the far pair's row underflows unless
    # each row is scaled by its own largest weight: it must still get its nearest pair's acc.
    u = np.array([0.0, 0.01, 0.9])
    acc = np.array([[0.3], [0.2], [0.7]])
    pred = bandwidth.loo_predictions(bandwidth.pair_distances_knn(u), acc, 0.002)
    assert np.isfinite(pred).all()
    np.testing.assert_allclose(pred[:, 0], [0.2, 0.3, 0.2], atol=1e-9)


def test_ot_pair_distances_are_symmetrised():
    pairs = Pairs(["a", "b", "c"], np.zeros(3), np.zeros((3, 1)))
    ot_matrix = {"a": {"a": 0.0, "b": 0.2, "c": 0.5}, "b": {"a": 0.4, "b": 0.0, "c": 0.1},
                 "c": {"a": 0.3, "b": 0.3, "c": 0.0}}
    dist = bandwidth.pair_distances(pairs, "ot", ot_matrix)
    np.testing.assert_allclose(dist, [[0.0, 0.3, 0.4], [0.3, 0.0, 0.2], [0.4, 0.2, 0.0]])


def _synthetic(scale: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    u = np.sort(rng.uniform(0, 1, 80))
    truth = 0.5 + 0.3 * np.sin(u / scale)
    return u, truth, (truth + rng.normal(0, 0.05, len(u)))[:, None]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auto_bandwidth_recovers_the_best_bandwidth(seed):
    # The best bandwidth is the one whose leave-one-out fit is closest to the noise-free
    # curve; the auto choice only sees the noisy pairs and must land near it.
    chosen = []
    for scale in (0.02, 0.2):
        u, truth, acc = _synthetic(scale, seed)
        dist = bandwidth.pair_distances_knn(u)
        picked, error = bandwidth.select_bandwidth(dist, acc)
        grid = np.array(bandwidth.DEFAULT_GRID)
        true_error = [np.abs(bandwidth.loo_predictions(dist, acc, b)[:, 0] - truth).mean()
                      for b in grid]
        best = grid[int(np.argmin(true_error))]
        assert best / 3 <= picked <= best * 3, (scale, picked, best)
        # On a flat stretch of the error curve a bandwidth several grid steps off fits as well;
        # what counts is the fit: within 1.5x the best error (the grid's median is 2.3x-3.3x).
        picked_error = np.abs(bandwidth.loo_predictions(dist, acc, picked)[:, 0] - truth).mean()
        assert picked_error <= 1.5 * min(true_error), (scale, picked_error, min(true_error))
        assert error == pytest.approx(bandwidth.loo_error(dist, acc, picked))
        chosen.append(picked)
    assert chosen[1] > chosen[0]  # a smoother curve gets a wider kernel


def test_flat_accuracies_choose_the_widest_bandwidth():
    dist = bandwidth.pair_distances_knn(np.array([0.1, 0.2, 0.3]))
    picked, error = bandwidth.select_bandwidth(dist, np.full((3, 2), 0.7), (0.01, 0.1, 1.0))
    assert (picked, error) == (1.0, pytest.approx(0.0))


U = {"a": 0.1, "b": 0.2, "c": 0.35, "d": 0.5}
ACC = {"a": [0.9, 0.1], "b": [0.8, 0.3], "c": [0.5, 0.5], "d": [0.2, 0.9]}


def _strict_u(heldout: str) -> dict[str, float]:
    """u of the other datasets with `heldout` out of the pool: stretched, by how much depending
    on the task (as leaving a task out moves the others' u), so strict sets differ from the
    reference pass."""
    stretch = 1.0 + 0.5 * (1 + list(U).index(heldout))
    return {d: u * stretch for d, u in U.items() if d != heldout}


def _pairs_table(models: list[str]) -> pl.DataFrame:
    """Pairs of 4 datasets: a reference pass (heldout null) and strict sets without each one."""
    frames = []
    for heldout in [None, *U]:
        u = U if heldout is None else _strict_u(heldout)
        names = list(u)
        pairs = Pairs(names, np.array([u[d] for d in names]), np.array([ACC[d] for d in names]))
        frames.append(pairs_frame(pairs, models, heldout))
    return pl.concat(frames)


@pytest.mark.parametrize("mode", ["strict", "reference"])
def test_fit_bandwidths_never_uses_the_scored_task(mode):
    models = ["m1", "m2"]
    table = _pairs_table(models)
    fitted = bandwidth.fit_bandwidths(table, models, ["a", "b", "c", "d"], mode, "knn", "auto",
                                      (0.05, 0.1, 0.2))
    assert fitted["task"].to_list() == ["a", "b", "c", "d", None]
    assert fitted["n_pairs"].to_list() == [3, 3, 3, 3, 4]
    # the row of "c" equals a fit on the three other pairs alone: strict mode's set without c,
    # or the reference pass less c's own pair
    acc = np.array([ACC[d] for d in ("a", "b", "d")])
    expected = {m: bandwidth.select_bandwidth(bandwidth.pair_distances_knn(
        np.array(list(v.values()))), acc, (0.05, 0.1, 0.2)) for m, v in
        [("strict", _strict_u("c")), ("reference", {d: x for d, x in U.items() if d != "c"})]}
    assert expected["strict"][1] != pytest.approx(expected["reference"][1])  # modes differ
    row = fitted.filter(pl.col("task") == "c")
    assert (row["bandwidth"].item(), row["loo_error"].item()) == pytest.approx(expected[mode])
    fixed = bandwidth.fit_bandwidths(table, models, ["a", "b", "c", "d"], mode, "knn", 0.09)
    assert fixed["bandwidth"].to_list() == [0.09] * 5
    assert not fixed["auto"].any()


@pytest.mark.parametrize("mode", ["strict", "reference"])
def test_fit_bandwidths_of_two_tasks_report_no_error_rather_than_fail(mode):
    # Each task of a two-task benchmark is scored with the other's pair alone: there is no
    # leave-one-out error to report, and every bandwidth gives the same smoother.
    models = ["m1", "m2"]
    table = pl.concat([pairs_frame(Pairs(names, np.array([U[d] for d in names]),
                                         np.array([ACC[d] for d in names])), models, heldout)
                       for heldout, names in [(None, ["a", "b"]), ("a", ["b"]), ("b", ["a"])]])
    for chosen in (0.09, "auto"):
        fitted = bandwidth.fit_bandwidths(table, models, ["a", "b"], mode, "knn", chosen,
                                          (0.05, 0.1, 0.2))
        tasks = fitted.filter(pl.col("task").is_not_null())
        assert tasks["n_pairs"].to_list() == [1, 1]
        assert tasks["loo_error"].is_nan().all()
        assert tasks["bandwidth"].to_list() == [0.09 if chosen == 0.09 else 0.2] * 2
        assert fitted.filter(pl.col("task").is_null())["loo_error"].item() > 0


def test_fit_bandwidths_with_ot_matrix():
    models = ["m1", "m2"]
    names = ["a", "b", "c", "d"]
    position = {"a": 0.0, "b": 0.1, "c": 0.3, "d": 0.6}
    ot_matrix = {s: {t: abs(position[s] - position[t]) for t in names} for s in names}
    fitted = bandwidth.fit_bandwidths(_pairs_table(models), models, names, "strict", "ot",
                                      0.1, ot_matrix=ot_matrix)
    assert fitted["descriptor"].unique().to_list() == ["ot"]
    # c's row: the OT distances among a, b, d drive the error (u plays no part)
    others = ["a", "b", "d"]
    dist = np.array([[ot_matrix[s][t] for t in others] for s in others])
    expected = bandwidth.loo_error(dist, np.array([ACC[d] for d in others]), 0.1)
    assert fitted.filter(pl.col("task") == "c")["loo_error"].item() == pytest.approx(expected)
    assert (fitted["loo_error"] > 0).all()


def test_route_instances_takes_argmax_with_ties_to_the_better_model():
    g = np.array([[0.2, 0.8, 0.8], [0.6, 0.4, 0.1], [0.5, 0.5, 0.5]])
    tiebreak = np.array([0.7, 0.6, 0.9])
    routed = scores.route_instances(g, tiebreak, ["a", "b", "c"])
    np.testing.assert_array_equal(routed, [2, 0, 2])
    # equal tiebreak: the smaller name
    routed = scores.route_instances(g, np.array([0.5, 0.5, 0.5]), ["z", "b", "c"])
    np.testing.assert_array_equal(routed, [1, 0, 1])


def test_calibration_descriptor_by_hand():
    from llmrouter import calibration

    features = np.array([[0.5, 0.5], [0.9, 1.0], [0.9, 0.9]])
    acc = np.array([0.5, 0.9, 0.8])
    target = np.array([[0.9, 0.95], [0.5, 0.5]])
    sigma = 0.1
    sq = ((target[:, None, :] - features[None]) ** 2).sum(axis=2)
    w = np.exp(-sq / (2 * sigma**2))
    np.testing.assert_allclose(calibration.calibration_p(target, features, acc, sigma),
                               (w @ acc) / w.sum(axis=1))
    # leave-one-task-out: pairs of the same task never predict each other
    groups = np.array([0, 1, 1])
    chosen, error = calibration.select_calibration_bandwidth(features, acc, groups, (0.05, 5.0))
    # task 1's pairs are predicted by task 0's alone (0.5): errors 0.4 and 0.3. Task 0's pair by
    # task 1's: nearest (0.8, error 0.3) with the narrow kernel, ~their mean (0.85, error 0.35)
    # with the wide one, so the narrow one wins.
    assert chosen == 0.05
    assert error == pytest.approx((0.3 + 0.4 + 0.3) / 3, abs=1e-6)  # float32 kernel


# 42 pairs (6 tasks of 7): blocks of 1, 3 and 5 rows (a task split across blocks, a last
# block of 2), and one block.
@pytest.mark.parametrize("block_elements", [1, 42 * 3, 42 * 5, 10**9])
def test_the_calibration_kernel_is_built_in_blocks_with_the_same_result(block_elements,
                                                                         monkeypatch):
    # The whole (pairs x pairs) kernel was built at once: 314 GB per array with 5,000 models,
    # in run_ablation, a job of the default target. In blocks of rows, the same numbers.
    from llmrouter import calibration

    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(6), 7)  # 6 tasks x 7 models
    features = rng.uniform(0.3, 1.0, (len(groups), 2))
    acc = np.clip(features[:, 0] + rng.normal(0, 0.05, len(groups)), 0, 1)
    target = rng.uniform(0.3, 1.0, (5, 2))
    grid = (0.01, 0.05, 0.2, 1.0)
    whole = (calibration.select_calibration_bandwidth(features, acc, groups, grid, 10**9),
             calibration.calibration_p(target, features, acc, 0.05, 10**9))
    sizes = []
    real_exp = np.exp

    def recording_exp(x, *args, **kwargs):
        sizes.append(np.size(x))
        return real_exp(x, *args, **kwargs)

    # numpy's own exp, for the whole process until the test ends (monkeypatch undoes it)
    monkeypatch.setattr(calibration.np, "exp", recording_exp)
    chosen = calibration.select_calibration_bandwidth(features, acc, groups, grid,
                                                      block_elements)
    p = calibration.calibration_p(target, features, acc, 0.05, block_elements)
    assert chosen[0] == whole[0][0] and chosen[1] == pytest.approx(whole[0][1], abs=1e-7)
    np.testing.assert_allclose(p, whole[1], rtol=1e-12)
    if block_elements < len(groups) ** 2:  # never the whole kernel: at most one block
        assert max(sizes) <= max(block_elements, len(groups))


def test_agreement_p_by_hand():
    from llmrouter import ablation

    g = np.array([[0.8, 0.2], [0.6, 0.4], [0.2, 0.4], [1.0, 0.0]])
    s1, s2 = np.array([0.65, 0.25]), np.array([0.75, 0.0])
    np.testing.assert_allclose(smoother.agreement_p(g), s2 * s1 + (1 - s2) * (1 - s1))
    assert ablation.agreement_p is smoother.agreement_p  # the ablation uses the library's


def _agreement_table(models: list[str]) -> pl.DataFrame:
    """_pairs_table with S1 and S2 on every pair (agreement = acc on "a", off by 0.1 on "d")."""
    table = _pairs_table(models)
    s1 = {"a": 0.5, "b": 0.5, "c": 0.5, "d": 0.6}
    return table.with_columns(s1=pl.col("dataset").replace_strict(s1),
                              s2=pl.lit(0.5))


def test_fit_bandwidths_of_the_agreement_descriptor():
    models = ["m1", "m2"]
    names = ["a", "b", "c", "d"]
    fitted = bandwidth.fit_bandwidths(_agreement_table(models), models, names, "strict",
                                      "agreement", 0.09)
    assert fitted["task"].to_list() == [*names, None]
    assert fitted["bandwidth"].is_nan().all() and not fitted["auto"].any()
    assert fitted["descriptor"].unique().to_list() == ["agreement"]
    # S2 = 0.5 makes p = 0.5 on every pair: the error is the mean |0.5 - acc| of the other pairs
    acc = {"a": [0.9, 0.1], "b": [0.8, 0.3], "c": [0.5, 0.5], "d": [0.2, 0.9]}
    for task in names:
        expected = np.mean([abs(0.5 - x) for d in names if d != task for x in acc[d]])
        row = fitted.filter(pl.col("task") == task)
        assert row["loo_error"].item() == pytest.approx(expected)
    with pytest.raises(ValueError, match="no s1/s2"):
        bandwidth.fit_bandwidths(_pairs_table(models), models, names, "strict", "agreement",
                                 0.09)


def test_pairs_keep_s1_and_s2_through_the_frame():
    models = ["m1", "m2"]
    pairs = Pairs(["a", "b"], np.array([0.1, 0.5]), np.array([[0.9, 0.1], [0.8, 0.3]]),
                  np.array([[0.6, 0.2], [0.7, 0.4]]), np.array([[0.5, 0.0], [1.0, 0.25]]))
    back = pairs_from_frame(pairs_frame(pairs, models, None), models, None)
    np.testing.assert_array_equal(back.s1, pairs.s1)
    np.testing.assert_array_equal(back.s2, pairs.s2)
    # a table written without them reads back without them
    old = pairs_frame(Pairs(pairs.datasets, pairs.u, pairs.acc), models, None)
    assert pairs_from_frame(old, models, None).s1 is None


@pytest.mark.parametrize("descriptor", ["knn", "ot", "agreement"])
def test_schema_accepts_every_descriptor(descriptor):
    from snakemake.utils import validate

    config = {"source": "table", "table": {"path": "x.parquet"},
              "smoother": {"descriptor": descriptor}}
    validate(config, str(REPO / "config.schema.yaml"))
    # unset: the paper's sigma with knn, chosen by leave-one-task-out error with ot
    assert smoother.configured_bandwidth(config["smoother"]["bandwidth"], descriptor) == \
        {"knn": 0.09, "ot": "auto", "agreement": None}[descriptor]
    from snakemake.exceptions import WorkflowError

    with pytest.raises(WorkflowError, match="'calibration' is not one of"):
        validate({"source": "table", "table": {"path": "x"},
                  "smoother": {"descriptor": "calibration"}}, str(REPO / "config.schema.yaml"))


def test_schema_default_is_the_papers_smoother():
    from snakemake.utils import validate

    config = {"source": "table", "table": {"path": "x.parquet"}}
    validate(config, str(REPO / "config.schema.yaml"))
    assert config["smoother"]["descriptor"] == "knn"
    assert smoother.configured_bandwidth(config["smoother"]["bandwidth"], "knn") == 0.09


@pytest.mark.slow
def test_agreement_descriptor_in_the_workflow(tmp_path):
    """score_task and a new task's scores with smoother.descriptor agreement: p is the task's
    own S2 S1 + (1 - S2)(1 - S1); bandwidth.parquet has NaN bandwidths and the error."""
    import json

    from conftest import mmlu_slice, run_workflow, write_config

    frame = mmlu_slice(datasets=3, models=4)
    frame.write_parquet(tmp_path / "slice.parquet")
    (tmp_path / "tasks").mkdir()
    prompts = ["Solve for x: 3x + 7 = 22.", "Factor x^2 - 49.", "What is 2 + 2?",
               "Name the largest planet.", "Who wrote Hamlet?"]
    (tmp_path / "tasks" / "tiny.jsonl").write_text(
        "".join(json.dumps({"text": t}) + "\n" for t in prompts))
    config = write_config(tmp_path, tmp_path / "slice.parquet",
                          smoother={"descriptor": "agreement"})
    results = tmp_path / "results"
    first = sorted(frame["dataset"].unique().to_list())[0]
    run_workflow(config, str(results / "scores" / f"{first}.parquet"),
                 str(results / "scores" / "tiny.parquet"))
    for name in (first, "tiny"):
        scored = pl.read_parquet(results / "scores" / f"{name}.parquet")
        np.testing.assert_allclose(
            scored["p"], scored["s2"] * scored["s1"] + (1 - scored["s2"]) * (1 - scored["s1"]))
        assert scored["pick_s3"].sum() == 1
    fitted = pl.read_parquet(results / "smoother" / "bandwidth.parquet")
    assert fitted["bandwidth"].is_nan().all()
    assert fitted["loo_error"].is_between(0, 1).all() and fitted.height == 4


@pytest.mark.parametrize("mode", ["strict", "reference"])
def test_calibration_pairs_never_hold_the_scored_task(mode):
    # The calibration descriptor smooths over the pairs its mode allows (strict: those
    # recomputed with the task out of every pool; reference: the single pass), never the
    # task's own pair: changing any other row must leave p as it is.
    from llmrouter import ablation

    models, names = ["m1", "m2"], ["a", "b", "c", "d"]
    rng = np.random.default_rng(8)
    frames = []
    for heldout in [None, *names]:
        kept = [d for d in names if d != heldout]
        frames.append(pl.DataFrame({
            "heldout": pl.Series([heldout] * (2 * len(kept)), dtype=pl.String),
            "dataset": np.repeat(kept, 2), "model": np.tile(models, len(kept)),
            "u": rng.uniform(0.2, 0.4, 2 * len(kept)), "acc": rng.uniform(0.4, 0.9, 2 * len(kept)),
            "s1": rng.uniform(0.4, 0.9, 2 * len(kept)), "s2": rng.uniform(0.4, 0.9, 2 * len(kept)),
        }))
    table = pl.concat(frames)
    g = rng.uniform(0, 1, (20, 2)).astype(np.float32)
    variant = ablation.Variant("v", mode=mode, descriptor="calibration", bandwidth=0.1)

    def p_of(pairs: pl.DataFrame) -> np.ndarray:
        inputs = ablation.Inputs(pool=None, neighbours={}, pairs=pairs)
        return ablation._calibration(inputs, "c", variant, g, RoutingParams(), (0.1,))[0]

    used = (pl.col("heldout") == "c") if mode == "strict" else pl.col("heldout").is_null()
    used = used & (pl.col("dataset") != "c")
    scrambled = table.with_columns(pl.when(used).then(pl.col("acc"))
                                   .otherwise(1.0 - pl.col("acc")).alias("acc"))
    np.testing.assert_array_equal(p_of(scrambled), p_of(table))
    moved = table.with_columns(pl.when(used).then(1.0 - pl.col("acc"))
                               .otherwise(pl.col("acc")).alias("acc"))
    assert not np.allclose(p_of(moved), p_of(table))
