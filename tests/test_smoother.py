"""The kernel smoother on hand-made pairs."""

import numpy as np
import pytest

from llmrouter import smoother


def test_kernel_weighted_mean_matches_hand_computation():
    # Pairs placed unevenly around the target, so a plain mean or another kernel (e.g.
    # exp(-|d| / sigma), which gives 0.6122) lands elsewhere.
    u = np.array([0.1, 0.3, 0.6])
    acc = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
    sigma = 0.1
    # Gaussian weights exp(-d^2 / 2 sigma^2) at d = 0.15, 0.05, 0.35, normalised by hand:
    # 0.324652, 0.882497, 0.002187 (sum 1.209336).
    np.testing.assert_allclose(smoother.smooth(0.25, u, acc, sigma), [0.633323, 0.366677],
                               atol=1e-6)


def test_small_bandwidth_picks_nearest_pair_and_stays_finite():
    u = np.array([0.1, 0.3, 0.5])
    acc = np.array([[0.9], [0.5], [0.1]])
    np.testing.assert_allclose(smoother.smooth(0.12, u, acc, 1e-4), [0.9])
    np.testing.assert_allclose(smoother.smooth(50.0, u, acc, 0.01), [0.1])


def test_large_bandwidth_is_plain_mean():
    u = np.array([0.1, 0.3, 0.5])
    acc = np.array([[0.9], [0.5], [0.1]])
    np.testing.assert_allclose(smoother.smooth(0.1, u, acc, 1e6), [0.5], rtol=1e-6)


def test_bad_bandwidth_and_empty_pairs_raise():
    with pytest.raises(ValueError, match="bandwidth must be positive, got 0"):
        smoother.kernel_weights(0.1, np.array([0.1]), 0.0)
    with pytest.raises(ValueError, match="the smoother has no fitted pairs"):
        smoother.kernel_weights(0.1, np.array([]), 0.1)


def test_an_unset_bandwidth_is_the_papers_with_knn_and_auto_with_ot():
    # The paper's 0.09 is a width on u's scale; OT distances are on another, so with `ot` the
    # bandwidth is chosen by leave-one-task-out error unless the config sets one.
    assert smoother.configured_bandwidth(None, "knn") == smoother.PAPER_BANDWIDTH == 0.09
    assert smoother.configured_bandwidth(None, "ot") == "auto"
    assert smoother.configured_bandwidth(0.3, "ot") == 0.3
    assert smoother.configured_bandwidth("auto", "knn") == "auto"
    assert smoother.configured_bandwidth(0.3, "agreement") is None
