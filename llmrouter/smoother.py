"""The confidence smoother: p(t, m), the estimated accuracy of m's thresholded predictor on t.

Fitted on pairs (u(d), acc(d, m)) from benchmark tasks d held out one at a time:
    p(t, m) = sum_d w_d acc(d, m),  w_d proportional to exp(-(u(t) - u(d))^2 / (2 sigma^2)).
Or, fitting nothing (`agreement`): p(t, m) = S2 S1 + (1 - S2)(1 - S1).
"""

from __future__ import annotations

import numpy as np

from llmrouter import scores

# The paper's sigma for the knn descriptor u (its code's default); the OT descriptor's
# distances are on another scale.
PAPER_BANDWIDTH = 0.09


def configured_bandwidth(bandwidth: float | str | None, descriptor: str) -> float | str | None:
    """smoother.bandwidth as the workflow uses it with `descriptor`: None with `agreement`,
    which smooths nothing; when unset (None), the paper's sigma with `knn` and `auto` with
    `ot`, whose distances are on another scale than u: a fixed default would mean nothing
    there, so the bandwidth is chosen by leave-one-task-out error."""
    if descriptor == "agreement":
        return None
    if bandwidth is None:
        return "auto" if descriptor == "ot" else PAPER_BANDWIDTH
    return bandwidth


def kernel_weights(u_target: float, u_pairs: np.ndarray, bandwidth: float) -> np.ndarray:
    """Normalised Gaussian kernel weights (n_pairs,) of the pairs' descriptors around u_target
    (`distance_weights` of u_target - u(d))."""
    return distance_weights(u_target - np.asarray(u_pairs, dtype=np.float64), bandwidth)


def smooth(
    u_target: float, u_pairs: np.ndarray, acc_pairs: np.ndarray, bandwidth: float
) -> np.ndarray:
    """p(t, m) for every model: kernel-weighted mean of acc_pairs (n_pairs, n_models)."""
    weights = kernel_weights(u_target, u_pairs, bandwidth)
    return weights @ np.asarray(acc_pairs, dtype=np.float64)


def distance_weights(distances: np.ndarray, bandwidth: float) -> np.ndarray:
    """Normalised Gaussian kernel weights (n_pairs,) of pairs at `distances` from the target
    (signed differences are fine: only their squares count).

    Computed in log space, so a target far from every pair still gets finite weights (all
    mass on the nearest pairs) instead of 0/0.
    """
    if bandwidth <= 0:
        raise ValueError(f"bandwidth must be positive, got {bandwidth}")
    distances = np.asarray(distances, dtype=np.float64)
    if distances.size == 0:
        raise ValueError("the smoother has no fitted pairs")
    log_w = -(distances**2) / (2.0 * bandwidth**2)
    w = np.exp(log_w - log_w.max())
    return w / w.sum()


def smooth_by_distance(
    distances: np.ndarray, acc_pairs: np.ndarray, bandwidth: float
) -> np.ndarray:
    """p(t, m) = sum_d w_d acc(d, m), w_d proportional to exp(-D(t, d)^2 / (2 sigma^2)).

    distances: (n_pairs,) D(t, d) from the target to each pair's task (e.g. OT);
    acc_pairs: (n_pairs, n_models). Returns (n_models,).
    """
    return distance_weights(distances, bandwidth) @ np.asarray(acc_pairs, dtype=np.float64)


def agreement(s1: np.ndarray, s2: np.ndarray) -> np.ndarray:
    """S2 S1 + (1 - S2)(1 - S1), elementwise: how often a thresholded predictor that calls a
    share S2 of the points correct agrees with the truth when it is independent of it and the
    model's accuracy is S1."""
    return s2 * s1 + (1.0 - s2) * (1.0 - s1)


def agreement_p(g: np.ndarray, threshold: float = 0.5, k: int | None = None) -> np.ndarray:
    """p(t, m) of the `agreement` descriptor: `agreement` of S1 and S2 of g. No fitting, no
    bandwidth. On HELM MMLU the predictor is close to independent of the truth inside a task,
    so this beats the kernel smoothers (results/report/ablation.md).
    g: (n_points, n_models), k: its number of neighbours (see scores.s1). Returns (n_models,)."""
    return agreement(scores.s1(g, k), scores.s2(g, threshold))
