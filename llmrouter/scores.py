"""The paper's model scores S1, S2, S3 and the rules that turn scores into a pick."""

from __future__ import annotations

import numpy as np


def s1(g: np.ndarray, k: int | None = None) -> np.ndarray:
    """S1(m) = mean_i g_m(x_i). g: (n_points, n_models) predicted correctness. -> (n_models,)

    k: g is a kNN predictor's (correct neighbours) / k, as knn.predict_correctness gives. S1
    is then the total of those integer counts over k n, so that models with equal S1 compare
    equal and `pick` applies its tie rule: summed as float32 fractions, 0.2 + 0.8 and
    0.4 + 0.6 differ in the last bits.
    """
    if k is None:
        return g.mean(axis=0, dtype=np.float64)
    counts = np.rint(g.astype(np.float64) * k).sum(axis=0)
    return counts / np.float64(k * g.shape[0])


def s2(g: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """S2(m) = mean_i 1[g_m(x_i) > threshold]. -> (n_models,)"""
    return (g > threshold).mean(axis=0, dtype=np.float64)


def s3(s2_scores: np.ndarray, p: np.ndarray) -> np.ndarray:
    """S3(m) = p(t, m) S2(m) + (1 - p(t, m)) (1 - S2(m)).

    The expected accuracy of m when its thresholded predictor is right with probability p.
    """
    return p * s2_scores + (1.0 - p) * (1.0 - s2_scores)


def predictor_accuracy(g: np.ndarray, correct: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """acc(t, m) = mean_i 1[1[g_m(x_i) > threshold] == correct_m(x_i)]. -> (n_models,)"""
    return ((g > threshold) == correct.astype(bool)).mean(axis=0, dtype=np.float64)


def pick(scores: np.ndarray, tiebreak: np.ndarray, names: list[str]) -> int:
    """Index of the best score; ties go to the higher `tiebreak`, then the smaller name.

    The result never depends on input order, hashing or sort stability. A NaN score is an
    error: it would compare unequal to every maximum and leave no candidate.
    """
    if np.isnan(scores).any():
        raise ValueError(f"NaN score for {[names[i] for i in np.flatnonzero(np.isnan(scores))]}")
    top = np.flatnonzero(scores == np.max(scores))
    if len(top) > 1:
        top = top[tiebreak[top] == np.max(tiebreak[top])]
    return int(min(top, key=lambda i: names[i]))


def beats_baseline_share(
    n_pos: np.ndarray,
    n_neg: np.ndarray,
    p: np.ndarray,
    candidate: int,
    baseline: int,
    rng: np.random.Generator,
    draws: int = 1000,
) -> float:
    """Share of simulated draws in which `candidate` gets more points right than `baseline`.

    Correct points of model m are simulated as Bin(n_pos_m, p_m) + Bin(n_neg_m, 1 - p_m), where
    n_pos / n_neg count the points its predictor calls correct / incorrect.
    """

    def sample(m: int) -> np.ndarray:
        return rng.binomial(n_pos[m], p[m], draws) + rng.binomial(n_neg[m], 1.0 - p[m], draws)

    return float(np.mean(sample(candidate) > sample(baseline)))


def pick_s3(
    s3_scores: np.ndarray,
    predicted_correct: np.ndarray,
    p: np.ndarray,
    baseline: int,
    tiebreak: np.ndarray,
    names: list[str],
    rng: np.random.Generator,
    min_share: float = 0.6,
    draws: int = 1000,
) -> int:
    """S3's pick with the fallback: keep argmax S3 only if it beats the baseline (BMA) in at
    least `min_share` of simulated draws, else return the baseline. min_share <= 0 disables it.

    predicted_correct: (n_points, n_models) bool, 1[g > threshold].
    """
    best = pick(s3_scores, tiebreak, names)
    if min_share <= 0 or best == baseline:
        return best
    n_pos = predicted_correct.sum(axis=0)
    n_neg = predicted_correct.shape[0] - n_pos
    share = beats_baseline_share(n_pos, n_neg, p, best, baseline, rng, draws)
    return best if share >= min_share else baseline


def route_instances(g: np.ndarray, tiebreak: np.ndarray, names: list[str]) -> np.ndarray:
    """Per-instance routing: argmax_m g_m(x_i) for each input. -> (n_points,) model indices.

    g: (n_points, n_models). Ties go as in `pick`: to the higher `tiebreak` (accuracy on the
    training pool), then the smaller name.
    """
    order = sorted(range(len(names)), key=lambda m: (-tiebreak[m], names[m]))
    priority = np.empty(len(names), dtype=np.int64)
    priority[order] = np.arange(len(names))
    top = g == g.max(axis=1, keepdims=True)
    return np.argmin(np.where(top, priority, len(names)), axis=1)
