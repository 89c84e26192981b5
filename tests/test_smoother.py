"""The kernel smoother on hand-made pairs."""

import numpy as np
import pytest

from llmrouter import smoother


def test_kernel_weighted_mean_matches_hand_computation():
    u = np.array([0.1, 0.3, 0.5])
    acc = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
    sigma = 0.2
    w = np.exp(-((0.3 - u) ** 2) / (2 * sigma**2))
    w /= w.sum()
    np.testing.assert_allclose(smoother.smooth(0.3, u, acc, sigma), w @ acc)
    # symmetric around the middle pair: both models get 0.5
    np.testing.assert_allclose(smoother.smooth(0.3, u, acc, sigma), [0.5, 0.5])


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
    with pytest.raises(ValueError):
        smoother.kernel_weights(0.1, np.array([0.1]), 0.0)
    with pytest.raises(ValueError):
        smoother.kernel_weights(0.1, np.array([]), 0.1)
