"""The labelled-shift estimator of p (alpha > 0, llmrouter/shift.py) and its ablation variant."""

from dataclasses import replace

import numpy as np
import polars as pl
import pytest

from conftest import clustered_pool
from llmrouter import ablation, scores, shift
from llmrouter.routing import RoutingParams
from llmrouter.smoother import agreement_p

PARAMS = RoutingParams(k=3, descriptor_k=4, bandwidth=0.2, draws=100)


def test_shrink_shift_by_hand():
    raw = np.array([0.1, 0.3])
    np.testing.assert_allclose(shift.shrink_shift(raw, 10, 0.0, 1.0), raw)
    np.testing.assert_allclose(shift.shrink_shift(raw, 10, 0.0, 0.0), [0.2, 0.2])
    # lam 0.5: halfway to the mean; kappa 10 with 10 labelled: half of it
    np.testing.assert_allclose(shift.shrink_shift(raw, 10, 10.0, 0.5), [0.075, 0.125])
    # no labelled points: no shift, even without shrinkage (no 0/0)
    np.testing.assert_array_equal(shift.shrink_shift(raw, 0, 0.0, 1.0), [0.0, 0.0])
    # several draws at once: L per row
    both = shift.shrink_shift(np.vstack([raw, raw]), np.array([0, 10]), 10.0, 1.0)
    np.testing.assert_allclose(both, [[0.0, 0.0], [0.05, 0.15]])


def test_shifted_p_is_agreement_of_the_corrected_s1():
    s1, s2 = np.array([0.6, 0.95]), np.array([0.7, 0.9])
    p = shift.shifted_p(s1, s2, np.array([0.1, 0.1]))
    a = np.array([0.7, 1.0])  # clipped at 1
    np.testing.assert_allclose(p, s2 * a + (1 - s2) * (1 - a))
    np.testing.assert_allclose(shift.shifted_p(s1, s2, np.zeros(2)),
                               s2 * s1 + (1 - s2) * (1 - s1))


def test_recovers_a_known_shift():
    # g independent of the truth (S2 about 0.85); every model's true accuracy is S1 + 0.15.
    rng = np.random.default_rng(0)
    n, m, delta = 4000, 3, 0.15
    g = rng.choice(np.linspace(0, 1, 6), size=(n, m), p=[0.05, 0.05, 0.05, 0.15, 0.3, 0.4])
    accuracy = g.mean(axis=0) + delta
    correct = (rng.random((n, m)) < accuracy).astype(np.uint8)
    raw = shift.raw_shift(g[:2000], correct[:2000])
    np.testing.assert_allclose(raw, delta, atol=0.03)
    moved = shift.shrink_shift(raw, 2000, 2.0, 0.2)
    p = shift.shifted_p(scores.s1(g[2000:]), scores.s2(g[2000:]), moved)
    p_true = scores.predictor_accuracy(g[2000:], correct[2000:])
    assert np.abs(p - p_true).mean() < 0.02
    # ... where S1 alone (the agreement descriptor) is off by about the shift's effect
    assert np.abs(agreement_p(g[2000:]) - p_true).mean() > 0.03


def test_choice_prefers_the_shift_when_tasks_share_one():
    # Training tasks whose accuracy is S1 - 0.3 for every model (S2 about 0.8): a weak
    # shrinkage wins.
    rng = np.random.default_rng(1)
    stats = []
    for i in range(6):
        g = rng.choice([0.0, 0.4, 0.6, 1.0], size=(300, 4), p=[0.1, 0.1, 0.2, 0.6])
        correct = (rng.random((300, 4)) < np.clip(g.mean(axis=0) - 0.3, 0, 1)).astype(np.uint8)
        stats.append(shift.draw_stats(g, correct, 0.1, f"d{i}"))
    both = shift.stack(stats)
    kappa, lam, error = shift.choose(both)
    assert error == pytest.approx(shift.grid_errors(both).min())
    unshifted = np.abs(shift.shifted_p(both.s1, both.s2, 0.0) - both.p_true).mean()
    assert kappa <= 5 and error < unshifted - 0.05


def test_choice_ties_go_to_the_most_shrunk():
    empty = shift.DrawStats(np.full((2, 2), 0.5), np.full((2, 2), 0.5), np.full((2, 2), 0.5),
                            np.zeros((2, 2)), np.zeros(2, dtype=int))
    assert shift.choose(empty)[:2] == (50.0, 0.0)


@pytest.fixture(scope="module")
def synthetic():
    return clustered_pool(5, [60, 45, 70, 50, 55], max(PARAMS.k, PARAMS.descriptor_k))


def test_kappa_lam_never_see_the_scored_task(synthetic):
    pool, _, neighbours = synthetic
    before = shift.training_stats(pool, neighbours, PARAMS, "d2", 0.2)
    flipped = pool.correct.copy()
    flipped[pool.rows("d2")] = 1 - flipped[pool.rows("d2")]
    other = replace(pool, correct=flipped)
    after = shift.training_stats(other, neighbours, PARAMS, "d2", 0.2)
    for name in ("s1", "s2", "p_true", "raw", "n_labelled"):
        np.testing.assert_array_equal(getattr(before, name), getattr(after, name))
    assert shift.choose(before) == shift.choose(after)
    # in reference mode the scored task's labels are in the training pools: they do matter
    ref = shift.training_stats(other, neighbours, PARAMS, "d2", 0.2, strict=False)
    assert not np.array_equal(ref.s1, before.s1)


def test_agreement_variants_in_the_ablation(synthetic):
    pool, vectors, neighbours = synthetic
    inputs = ablation.Inputs(pool, neighbours, ablation.all_pairs(pool, neighbours, PARAMS),
                             None, vectors)
    plain = ablation.score_variant(inputs, ablation.Variant(
        "a", descriptor="agreement", bandwidth=float("nan")), PARAMS)
    np.testing.assert_allclose(
        plain["p"], plain["s2"] * plain["s1"] + (1 - plain["s2"]) * (1 - plain["s1"]))
    assert plain["kappa"].is_null().all()
    labelled = ablation.score_variant(inputs, ablation.Variant(
        "b", descriptor="agreement", bandwidth=float("nan"), alpha=0.2), PARAMS, seed=1)
    assert labelled["kappa"].is_not_null().all() and labelled["lam"].is_not_null().all()
    assert set(labelled["kappa"]) <= set(shift.KAPPAS)
    # the choice is per task, shared by every seed
    again = ablation.score_variant(inputs, ablation.Variant(
        "b", descriptor="agreement", bandwidth=float("nan"), alpha=0.2), PARAMS, seed=2)
    assert labelled.select("task", "kappa", "lam").unique().sort("task").equals(
        again.select("task", "kappa", "lam").unique().sort("task"))
    assert (labelled["n"] < plain["n"]).all()


def test_default_variants_add_agreement_with_alpha():
    names = [v.name for v in ablation.default_variants((0.04, 0.1))]
    assert "strict, agreement" in names
    for a in ("0.04", "0.1"):
        variant = next(v for v in ablation.default_variants((0.04, 0.1))
                       if v.name == f"strict, agreement, alpha {a}")
        assert variant.descriptor == "agreement" and variant.mode == "strict"
        assert variant.alpha == float(a)
    assert pl.Series(names).is_unique().all()


def test_draw_stats_by_hand():
    # Each draw: S1, S2 and p_true on the unlabelled rest, the raw shift on the labelled
    # points, one labelled split per seed (alpha.labelled_split).
    from llmrouter import alpha as alpha_mod

    rng = np.random.default_rng(4)
    g = rng.integers(0, 4, size=(60, 3)) / 3.0
    correct = (rng.random((60, 3)) < 0.6).astype(np.uint8)
    stats = shift.draw_stats(g, correct, 0.1, "anatomy", threshold=0.4, seeds=(0, 1))
    splits = [alpha_mod.labelled_split(60, 0.1, seed, "anatomy") for seed in (0, 1)]
    assert not np.array_equal(splits[0][0], splits[1][0])  # the seeds draw different points
    for row, (labelled, rest) in enumerate(splits):
        np.testing.assert_allclose(stats.s1[row], g[rest].mean(axis=0))
        np.testing.assert_allclose(stats.s2[row], (g[rest] > 0.4).mean(axis=0))
        np.testing.assert_allclose(stats.p_true[row],
                                   ((g[rest] > 0.4) == correct[rest]).mean(axis=0))
        np.testing.assert_allclose(stats.raw[row],
                                   (correct[labelled] - g[labelled]).mean(axis=0))
        assert stats.n_labelled[row] == len(labelled) == 6


def test_shrink_shift_pools_models_within_each_draw():
    # lam 0 replaces each draw's shifts by that draw's own mean over models
    raw = np.array([[0.1, 0.3], [-0.2, 0.0]])
    np.testing.assert_allclose(shift.shrink_shift(raw, np.array([10, 10]), 0.0, 0.0),
                               [[0.2, 0.2], [-0.1, -0.1]])
