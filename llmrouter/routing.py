"""Leave-one-task-out routing over a benchmark pool: smoother pairs and per-task scores.

Glue between the pure pieces (knn, smoother, scores); everything here is vectorised over models.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import polars as pl

from llmrouter import knn, scores, smoother
from llmrouter.pool import Pool


@dataclass(frozen=True)
class RoutingParams:
    """The method's settings (reference values as defaults).

    k: neighbours of the correctness predictor; descriptor_k: neighbours of u(d);
    threshold: g > threshold counts as predicted correct; bandwidth: the smoother's sigma;
    fallback_share: S3 keeps its pick over BMA only above this share of draws (0 disables);
    draws: simulated draws; seed: base seed of those draws;
    mode: "strict" (nothing of a held-out task is used) or "reference" (the authors' code).
    """

    k: int = 5
    descriptor_k: int = 19
    threshold: float = 0.5
    bandwidth: float = 0.09
    fallback_share: float = 0.6
    draws: int = 1000
    seed: int = 0
    mode: str = "strict"


@dataclass(frozen=True)
class Pairs:
    """Smoother pairs: u (n_pairs,) descriptors, acc (n_pairs, n_models), and their datasets."""

    datasets: list[str]
    u: np.ndarray
    acc: np.ndarray


def task_predictions(
    neighbours: knn.Neighbours, pool: Pool, params: RoutingParams, exclude: tuple[int, ...] = ()
) -> tuple[np.ndarray, float]:
    """g (n_points, n_models) and the descriptor u of one task's points, pool minus `exclude`."""
    positions = knn.first_allowed(neighbours, max(params.k, params.descriptor_k), exclude)
    rows = np.take_along_axis(neighbours.index, positions[:, : params.k], axis=1)
    dists = np.take_along_axis(neighbours.distance, positions[:, : params.descriptor_k], axis=1)
    return knn.predict_correctness(rows, pool.correct), knn.knn_descriptor(dists)


def smoother_pairs(
    pool: Pool,
    neighbours: dict[str, knn.Neighbours],
    params: RoutingParams,
    heldout: str | None = None,
) -> Pairs:
    """(u(d), acc(d, m)) for every benchmark dataset d, each held out from its own pool.

    heldout: a task whose data no pair may use (strict nesting): it is dropped from the pairs
    and from every training pool. None: one leave-one-task-out pass over all datasets.
    """
    exclude = () if heldout is None else (pool.datasets.index(heldout),)
    names, us, accs = [], [], []
    for name in pool.datasets:
        if name == heldout:
            continue
        g, u = task_predictions(neighbours[name], pool, params, exclude)
        correct = pool.correct[pool.rows(name)]
        names.append(name)
        us.append(u)
        accs.append(scores.predictor_accuracy(g, correct, params.threshold))
    return Pairs(names, np.asarray(us), np.vstack(accs))


def pairs_frame(pairs: Pairs, models: list[str], heldout: str | None) -> pl.DataFrame:
    """Long table of pairs: heldout, dataset, model, u, acc."""
    n_d, n_m = pairs.acc.shape
    return pl.DataFrame(
        {
            "heldout": pl.Series([heldout] * (n_d * n_m), dtype=pl.String),
            "dataset": np.repeat(pairs.datasets, n_m),
            "model": np.tile(models, n_d),
            "u": np.repeat(pairs.u, n_m),
            "acc": pairs.acc.reshape(-1),
        }
    )


def pairs_from_frame(frame: pl.DataFrame, models: list[str], heldout: str | None,
                     drop: str | None = None) -> Pairs:
    """Select one set of pairs back out of `pairs_frame` rows (optionally dropping a dataset)."""
    rows = frame.filter(
        pl.col("heldout").is_null() if heldout is None else pl.col("heldout") == heldout
    )
    if drop is not None:
        rows = rows.filter(pl.col("dataset") != drop)
    wide = rows.pivot(on="model", index=["dataset", "u"], values="acc").sort("dataset")
    return Pairs(wide["dataset"].to_list(), wide["u"].to_numpy(), wide.select(models).to_numpy())


def task_seed(seed: int, task: str) -> np.random.Generator:
    """A generator seeded by the run seed and the task's name (stable across processes)."""
    return np.random.default_rng([seed, zlib.crc32(task.encode())])


def score_task(
    task: str,
    g: np.ndarray,
    u: float,
    pairs: Pairs,
    bma_scores: np.ndarray,
    tiebreak: np.ndarray,
    models: list[str],
    params: RoutingParams,
    correct: np.ndarray | None = None,
) -> pl.DataFrame:
    """Scores and picks of every model on one task.

    g: (n_points, n_models) predicted correctness; u: the task's descriptor;
    bma_scores: (n_models,) mean per-task accuracy on the benchmark tasks BMA may use;
    tiebreak: (n_models,) mean accuracy on the training pool; correct: (n_points, n_models)
    true correctness, or None for an unlabelled task.
    Returns one row per model: model, s1, s2, p, s3, accuracy, p_true, bma_score, n_pos,
    and a boolean pick_<method> column per method.
    """
    rng = task_seed(params.seed, task)
    s1 = scores.s1(g)
    s2 = scores.s2(g, params.threshold)
    p = smoother.smooth(u, pairs.u, pairs.acc, params.bandwidth)
    s3 = scores.s3(s2, p)
    predicted = g > params.threshold
    bma = scores.pick(bma_scores, tiebreak, models)
    picks = {
        "s1": scores.pick(s1, tiebreak, models),
        "s2": scores.pick(s2, tiebreak, models),
        "s3": scores.pick_s3(s3, predicted, p, bma, tiebreak, models, rng,
                             params.fallback_share, params.draws),
        "bma": bma,
    }
    n = g.shape[0]
    accuracy = p_true = None
    if correct is not None:
        accuracy = correct.mean(axis=0, dtype=np.float64)
        p_true = scores.predictor_accuracy(g, correct, params.threshold)
        s3_true = scores.s3(s2, p_true)
        picks["s3_true_p"] = scores.pick_s3(s3_true, predicted, p_true, bma, tiebreak, models,
                                            rng, params.fallback_share, params.draws)
        picks["oracle"] = scores.pick(accuracy, tiebreak, models)
    frame = pl.DataFrame(
        {
            "task": [task] * len(models),
            "model": models,
            "s1": s1,
            "s2": s2,
            "p": p,
            "s3": s3,
            "accuracy": pl.Series(_or_nulls(accuracy, len(models)), dtype=pl.Float64),
            "p_true": pl.Series(_or_nulls(p_true, len(models)), dtype=pl.Float64),
            "bma_score": bma_scores,
            "n_pos": predicted.sum(axis=0).astype(np.int64),
            "n": np.full(len(models), n, dtype=np.int64),
        }
    )
    flags = {f"pick_{m}": np.arange(len(models)) == picks.get(m, -1) for m in METHODS}
    return frame.with_columns(**{k: pl.Series(v) for k, v in flags.items()})


METHODS = ["s1", "s2", "s3", "s3_true_p", "bma", "oracle"]


def _or_nulls(values: np.ndarray | None, n: int) -> list | np.ndarray:
    return [None] * n if values is None else values
