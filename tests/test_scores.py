"""S1, S2, S3, predictor accuracy and picks on small hand-computed examples."""

import numpy as np
import pytest

from llmrouter import knn, scores

G = np.array([[0.8, 0.4, 0.6], [0.2, 0.6, 0.6], [1.0, 0.0, 0.4], [0.6, 0.6, 0.5]])


def test_s1_is_mean_predicted_correctness():
    np.testing.assert_allclose(scores.s1(G), [0.65, 0.4, 0.525])


def test_s1_of_knn_predictions_is_exact_so_equal_s1_reaches_the_tie_rule():
    # a: 1 and 4 of 5 neighbours right, b: 2 and 3; both S1 = 0.5 exactly. As float32
    # fractions 0.2 + 0.8 and 0.4 + 0.6 differ in the last bits, and argmax would pick by them.
    correct = np.array([[1, 0, 0, 0, 0, 1, 1, 1, 1, 0],
                        [1, 1, 0, 0, 0, 1, 1, 1, 0, 0]], dtype=np.uint8).T
    rows = np.arange(10).reshape(2, 5)
    g = knn.predict_correctness(rows, correct)
    assert g.dtype == np.float32 and scores.s1(g)[0] != scores.s1(g)[1]
    exact = scores.s1(g, 5)
    np.testing.assert_array_equal(exact, [0.5, 0.5])
    assert scores.pick(exact, np.array([0.9, 0.1]), ["a", "b"]) == 0
    assert scores.pick(exact, np.array([0.1, 0.9]), ["a", "b"]) == 1


def test_s2_counts_strictly_above_threshold():
    # model 2: 0.6, 0.6 above; 0.4 and 0.5 (equal) are not
    np.testing.assert_allclose(scores.s2(G), [0.75, 0.5, 0.5])


def test_s3_mixes_s2_with_its_complement():
    np.testing.assert_allclose(scores.s3(np.array([0.75, 0.5]), np.array([0.8, 0.6])),
                               [0.8 * 0.75 + 0.2 * 0.25, 0.5])


def test_predictor_accuracy():
    correct = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1]], dtype=np.uint8)
    # predicted: m0 1,0,1,1 ; m1 0,1,0,1 ; m2 1,1,0,0
    np.testing.assert_allclose(scores.predictor_accuracy(G, correct), [0.75, 0.5, 0.5])


def test_pick_breaks_ties_by_tiebreak_then_name():
    names = ["b", "a", "c"]
    assert scores.pick(np.array([1.0, 1.0, 0.5]), np.array([0.2, 0.1, 0.9]), names) == 0
    assert scores.pick(np.array([1.0, 1.0, 0.5]), np.array([0.2, 0.2, 0.9]), names) == 1
    assert scores.pick(np.array([0.1, 0.2, 0.5]), np.zeros(3), names) == 2


def test_pick_names_the_model_with_a_nan_score():
    with pytest.raises(ValueError, match=r"NaN score for \['a'\]"):
        scores.pick(np.array([0.1, np.nan, 0.5]), np.zeros(3), ["b", "a", "c"])


def test_pick_s3_falls_back_to_baseline_when_not_clearly_better():
    rng = np.random.default_rng(0)
    names = ["m0", "m1"]
    predicted = np.zeros((100, 2), dtype=bool)
    predicted[:60, 0] = True
    predicted[:59, 1] = True
    p = np.array([0.9, 0.9])
    s3 = scores.s3(predicted.mean(0), p)
    # m0 is only a hair ahead: the simulation cannot tell them apart -> baseline m1
    assert scores.pick_s3(s3, predicted, p, 1, np.zeros(2), names, rng) == 1
    predicted[:95, 0] = True
    s3 = scores.s3(predicted.mean(0), p)
    assert scores.pick_s3(s3, predicted, p, 1, np.zeros(2), names, rng) == 0
    # min_share 0 disables the fallback
    predicted[:60, 0] = True
    predicted[60:, 0] = False
    s3 = scores.s3(predicted.mean(0), p)
    assert scores.pick_s3(s3, predicted, p, 1, np.zeros(2), names, rng, min_share=0) == 0


def test_beats_baseline_share_is_seeded():
    # Two close models, so the share depends on the draws (a sure win would be 1.0 whatever
    # generator drew them).
    args = (np.array([52, 50]), np.array([48, 50]), np.array([0.6, 0.6]), 0, 1)
    a = scores.beats_baseline_share(*args, np.random.default_rng(1))
    b = scores.beats_baseline_share(*args, np.random.default_rng(1))
    other = scores.beats_baseline_share(*args, np.random.default_rng(2))
    assert a == b and 0.3 < a < 0.7 and other != a


def test_fallback_draws_by_hand():
    # p = 1: a model's simulated correct count is its n_pos; p = 0: its n_neg.
    rng = np.random.default_rng(0)
    predicted = np.zeros((10, 2), dtype=bool)
    predicted[:3, 0] = True  # candidate: n_pos 3, n_neg 7
    predicted[:2, 1] = True  # baseline: n_pos 2, n_neg 8
    share = scores.beats_baseline_share
    n_pos, n_neg = predicted.sum(axis=0), 10 - predicted.sum(axis=0)
    assert share(n_pos, n_neg, np.array([1.0, 0.0]), 0, 1, rng, 50) == 0.0  # 3 against 8
    assert share(n_pos, n_neg, np.array([1.0, 1.0]), 0, 1, rng, 50) == 1.0  # 3 against 2
    assert share(n_pos, n_neg, np.array([0.0, 0.0]), 0, 1, rng, 50) == 0.0  # 7 against 8
    # equal counts do not beat the baseline: 2 against 2
    predicted[2, 0] = False
    n_pos, n_neg = predicted.sum(axis=0), 10 - predicted.sum(axis=0)
    assert share(n_pos, n_neg, np.array([1.0, 1.0]), 0, 1, rng, 50) == 0.0
    # pick_s3 keeps its pick when the share reaches min_share exactly (here 1.0)
    predicted[2, 0] = True
    names, tiebreak = ["cand", "base"], np.array([0.0, 1.0])
    s3 = np.array([0.9, 0.1])
    assert scores.pick_s3(s3, predicted, np.array([1.0, 1.0]), 1, tiebreak, names, rng,
                          min_share=1.0, draws=50) == 0
    assert scores.pick_s3(s3, predicted, np.array([1.0, 0.0]), 1, tiebreak, names, rng,
                          min_share=0.5, draws=50) == 1
