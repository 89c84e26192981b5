"""The confidence-based estimators of p in benchmarks/p_error_shift_predictors.py (histogram
binning, ATC, DoC) against hand computations: the study's negative result is only worth quoting
if the estimators are the published ones."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import p_error_shift_predictors as study  # noqa: E402


def others(level_rows: list[list[float]], level_right: list[list[float]]) -> study.Others:
    """An Others holding only the level counts (k = 5: six levels, one column per model)."""
    empty = np.zeros(0)
    return study.Others(empty, empty, empty, empty, empty, empty,
                        np.array(level_rows, dtype=float), np.array(level_right, dtype=float))


# One model; the other tasks' 100 inputs by level g = 0, .2, .4, .6, .8, 1 and how many of
# them the thresholded predictor gets right: accuracy 62 / 100.
ROWS = [[10], [10], [20], [20], [10], [30]]
RIGHT = [[8], [6], [10], [10], [7], [21]]


def test_on_the_other_tasks_own_spread_every_estimator_gives_their_accuracy():
    share = np.array(ROWS, dtype=float) / 100
    for name, p in study.confidence_estimates(share, others(ROWS, RIGHT)).items():
        assert p == pytest.approx([0.62]), name


def test_against_hand_computations():
    # The task: 50% of its inputs at g = 0.4 (confidence 0.6), 50% at g = 0.8 (confidence 0.8).
    share = np.array([[0], [0], [0.5], [0], [0.5], [0]])
    got = study.confidence_estimates(share, others(ROWS, RIGHT))
    # Binning: 0.5 * 10/20 + 0.5 * 7/10.
    assert got["histogram binning (per model and level of g)"] == pytest.approx([0.6])
    # ATC: confidence 1 holds 0.4 of the other tasks' inputs (g = 0 and g = 1), 0.8 holds 0.2,
    # 0.6 holds 0.4; their accuracy 0.62 takes all of 1 and 0.8 and 0.02 / 0.4 of 0.6.
    assert got["ATC, average thresholded confidence"] == pytest.approx([0.5 * 0.05 + 0.5])
    # DoC: 0.62 + (0.5 * 0.6 + 0.5 * 0.8) - (0.4 * 1 + 0.2 * 0.8 + 0.4 * 0.6).
    assert got["DoC, difference of confidences"] == pytest.approx([0.62 + 0.7 - 0.8])


def test_atc_splits_a_confidence_value_across_both_its_levels():
    # Accuracy 0.7 on the other tasks: confidence 1 (0.4) and 0.8 (0.2) are taken whole, and
    # 0.1 / 0.4 of confidence 0.6, whether the inputs sit at g = 0.4 or g = 0.6.
    rows, right = ROWS, [[8], [6], [14], [14], [7], [21]]
    for level in (2, 3):
        share = np.zeros((6, 1))
        share[level] = 1.0
        got = study.confidence_estimates(share, others(rows, right))
        assert got["ATC, average thresholded confidence"] == pytest.approx([0.25])


def test_g_levels_rejects_g_off_the_grid():
    assert study.g_levels(np.array([[0.0, 0.4], [1.0, 0.6]])).tolist() == [[0, 2], [5, 3]]
    with pytest.raises(SystemExit, match="multiple of 1/5"):
        study.g_levels(np.array([[0.5]]))


def test_subject_education_reads_the_level_the_name_starts_with():
    assert [study.subject_education(t) for t in (
        "elementary_mathematics", "high_school_us_history", "college_physics",
        "professional_law", "virology", "us_foreign_policy")] == [
        "elementary", "high_school", "college", "professional", "other", "other"]
