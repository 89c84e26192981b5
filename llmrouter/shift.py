"""p(t, m) from a few labelled points of the task (alpha > 0): the `agreement` estimator with
S1 corrected by the labelled points.

Inside a task the thresholded predictor is close to independent of the truth, so its accuracy is
p ~ S2 a + (1 - S2)(1 - a), a the model's true accuracy on t. S1 estimates a with an error that
is mostly a shift shared by every model of the task (HELM MMLU: mean |S1 - a| 0.084, 0.038 once
each task's mean shift is removed), and no unlabelled signal predicts that shift. L labelled
points do, shrunk towards the models' mean (lam) and towards no shift (kappa):
    shift_m = mean over labelled x of (correct_m(x) - g_m(x)),
    shift = (lam shift_m + (1 - lam) mean_m' shift_m') L / (L + kappa),
    a_hat = clip(S1 + shift, 0, 1),  p = S2 a_hat + (1 - S2)(1 - a_hat).
(kappa, lam) come from simulated labelled draws of the same alpha on the training tasks only:
the scored task is never used to choose them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from llmrouter import alpha as alpha_mod
from llmrouter import knn, scores
from llmrouter.pool import Pool
from llmrouter.routing import RoutingParams, task_predictions
from llmrouter.smoother import agreement

KAPPAS = (0.0, 2.0, 5.0, 10.0, 20.0, 50.0)
LAMS = (0.0, 0.2, 0.5, 1.0)
# Simulated labelled draws per training task when choosing (kappa, lam).
SIMULATION_SEEDS = (0, 1, 2)


def raw_shift(g_labelled: np.ndarray, correct_labelled: np.ndarray) -> np.ndarray:
    """(n_models,) mean over the labelled points of correct - g (zeros without any)."""
    if len(g_labelled) == 0:
        return np.zeros(g_labelled.shape[1])
    return (np.asarray(correct_labelled, dtype=np.float64) - g_labelled).mean(axis=0)


def shrink_shift(raw: np.ndarray, n_labelled: np.ndarray | int, kappa: float,
                 lam: float) -> np.ndarray:
    """(lam raw_m + (1 - lam) mean_m raw_m) L / (L + kappa), over the last axis.

    raw: (..., n_models); n_labelled: L, scalar or (...,). L = 0 gives no shift (even kappa 0).
    """
    raw = np.asarray(raw, dtype=np.float64)
    mixed = lam * raw + (1.0 - lam) * raw.mean(axis=-1, keepdims=True)
    n = np.asarray(n_labelled, dtype=np.float64)[..., None]
    with np.errstate(invalid="ignore", divide="ignore"):
        weight = np.where(n > 0, n / (n + kappa), 0.0)
    return mixed * weight


def shifted_p(s1: np.ndarray, s2: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """p = S2 a_hat + (1 - S2)(1 - a_hat), a_hat = clip(S1 + shift, 0, 1)."""
    return agreement(np.clip(s1 + shift, 0.0, 1.0), s2)


@dataclass(frozen=True)
class DrawStats:
    """What choosing (kappa, lam) needs from simulated labelled draws, one row per draw:
    s1, s2, p_true, raw: (n_draws, n_models) on the unlabelled rest / the labelled points;
    n_labelled: (n_draws,)."""

    s1: np.ndarray
    s2: np.ndarray
    p_true: np.ndarray
    raw: np.ndarray
    n_labelled: np.ndarray


def draw_stats(g: np.ndarray, correct: np.ndarray, alpha: float, task: str,
               threshold: float = 0.5, seeds: tuple[int, ...] = SIMULATION_SEEDS,
               k: int | None = None) -> DrawStats:
    """Labelled draws of `alpha` on one training task (alpha.labelled_split, one per seed).

    g: (n, n_models) the task's predictions from a pool without it (and without the scored
    task), k its number of neighbours (scores.s1); correct: (n, n_models). The labelled points
    only correct S1: g is not recomputed with them in the pool (the shift is measured against
    the pool-free predictor).
    """
    rows = {"s1": [], "s2": [], "p_true": [], "raw": [], "n_labelled": []}
    for seed in seeds:
        labelled, rest = alpha_mod.labelled_split(len(g), alpha, seed, task)
        rows["s1"].append(scores.s1(g[rest], k))
        rows["s2"].append(scores.s2(g[rest], threshold))
        rows["p_true"].append(scores.predictor_accuracy(g[rest], correct[rest], threshold))
        rows["raw"].append(raw_shift(g[labelled], correct[labelled]))
        rows["n_labelled"].append(len(labelled))
    return DrawStats(**{k: np.asarray(v) for k, v in rows.items()})


def stack(stats: list[DrawStats]) -> DrawStats:
    """The draws of several tasks as one DrawStats."""
    return DrawStats(*(np.concatenate([getattr(s, f) for s in stats])
                       for f in ("s1", "s2", "p_true", "raw", "n_labelled")))


def grid_errors(stats: DrawStats, kappas: tuple[float, ...] = KAPPAS,
                lams: tuple[float, ...] = LAMS) -> np.ndarray:
    """(len(kappas), len(lams)) mean over draws and models of |p - p_true|."""
    out = np.empty((len(kappas), len(lams)))
    for i, kappa in enumerate(kappas):
        for j, lam in enumerate(lams):
            p = shifted_p(stats.s1, stats.s2, shrink_shift(stats.raw, stats.n_labelled,
                                                           kappa, lam))
            out[i, j] = np.abs(p - stats.p_true).mean()
    return out


def choose(stats: DrawStats, kappas: tuple[float, ...] = KAPPAS,
           lams: tuple[float, ...] = LAMS) -> tuple[float, float, float]:
    """(kappa, lam, error) with the smallest simulated error. Ties (e.g. no draw has labelled
    points) go to the largest kappa, then the smallest lam: the most shrunk shift."""
    errors = grid_errors(stats, kappas, lams)
    best = np.argwhere(errors <= errors.min() + 1e-12)
    i, j = max(best, key=lambda ij: (kappas[ij[0]], -lams[ij[1]]))
    return float(kappas[i]), float(lams[j]), float(errors[i, j])


def training_stats(pool: Pool, neighbours: dict[str, knn.Neighbours], params: RoutingParams,
                   task: str, alpha: float, strict: bool = True,
                   seeds: tuple[int, ...] = SIMULATION_SEEDS) -> DrawStats:
    """Simulated labelled draws of `alpha` on every benchmark task but `task`: what (kappa, lam)
    of `task` are chosen on. strict: `task` is also out of every training pool, so nothing of
    it (points or labels) is used; otherwise each task's pool is the others (the reference's
    single leave-one-task-out pass)."""
    exclude = (pool.datasets.index(task),) if strict else ()
    stats = []
    for name in pool.datasets:
        if name == task:
            continue
        g, _ = task_predictions(neighbours[name], pool, params, exclude)
        stats.append(draw_stats(g, pool.correct[pool.rows(name)], alpha, name,
                                params.threshold, seeds, params.k))
    return stack(stats)
