"""Leave-one-task-out routing over a benchmark pool: smoother pairs and per-task scores.

Glue between the pure pieces (knn, smoother, scores); everything here is vectorised over models.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from llmrouter import knn, scores, smoother
from llmrouter.pool import Pool, check_neighbour_supply
from llmrouter.rng import task_rng


@dataclass(frozen=True)
class RoutingParams:
    """The method's settings (reference values as defaults).

    k: neighbours of the correctness predictor; descriptor_k: neighbours of u(d);
    threshold: g > threshold counts as predicted correct; bandwidth: the smoother's sigma;
    fallback_share: S3 keeps its pick over BMA only at this share of draws or more (0 disables);
    draws: simulated draws; seed: base seed of those draws;
    mode: "strict" (nothing of a held-out task is used) or "reference" (the authors' code);
    descriptor: how p(t, m) finds tasks like t, "knn" (the paper's scalar u) or "ot" (OT
    distance between task clouds), or "agreement" (no smoother: S2 S1 + (1 - S2)(1 - S1),
    bandwidth unused, None from the workflow); a bandwidth of "auto" is chosen per task by
    leave-one-task-out error (llmrouter.bandwidth) and read from the smoother's bandwidth table.
    """

    k: int = 5
    descriptor_k: int = 19
    threshold: float = 0.5
    bandwidth: float | str | None = smoother.PAPER_BANDWIDTH
    fallback_share: float = 0.6
    draws: int = 1000
    seed: int = 0
    mode: str = "strict"
    descriptor: str = "knn"


@dataclass(frozen=True)
class Pairs:
    """Smoother pairs: u (n_pairs,) descriptors, acc (n_pairs, n_models), and their datasets.

    s1, s2: (n_pairs, n_models) S1 and S2 of each model on each pair's task, when known (they
    give the leave-one-task-out error of the `agreement` descriptor).
    """

    datasets: list[str]
    u: np.ndarray
    acc: np.ndarray
    s1: np.ndarray | None = None
    s2: np.ndarray | None = None


def task_predictions(
    neighbours: knn.Neighbours, pool: Pool, params: RoutingParams, exclude: tuple[int, ...] = ()
) -> tuple[np.ndarray, float]:
    """g (n_points, n_models) and the descriptor u of one task's points, pool minus `exclude`."""
    positions = knn.first_allowed(neighbours, max(params.k, params.descriptor_k), exclude)
    rows = np.take_along_axis(neighbours.index, positions[:, : params.k], axis=1)
    dists = np.take_along_axis(neighbours.distance, positions[:, : params.descriptor_k], axis=1)
    return knn.predict_correctness(rows, pool.correct), knn.knn_descriptor(dists)


def task_descriptor(neighbours: knn.Neighbours, descriptor_k: int) -> float:
    """The descriptor u of one task's points against the whole pool: `task_predictions`' u,
    without g, so what stores u alone (a task's row of the distance matrix) does not depend on
    the k of g."""
    positions = knn.first_allowed(neighbours, descriptor_k)
    return knn.knn_descriptor(np.take_along_axis(neighbours.distance, positions, axis=1))


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
    names, us, accs, s1s, s2s = [], [], [], [], []
    for name in pool.datasets:
        if name == heldout:
            continue
        g, u = task_predictions(neighbours[name], pool, params, exclude)
        correct = pool.correct[pool.rows(name)]
        names.append(name)
        us.append(u)
        accs.append(scores.predictor_accuracy(g, correct, params.threshold))
        s1s.append(scores.s1(g, params.k))
        s2s.append(scores.s2(g, params.threshold))
    return Pairs(names, np.asarray(us), np.vstack(accs), np.vstack(s1s), np.vstack(s2s))


def all_smoother_pairs(
    pool: Pool,
    neighbours: dict[str, knn.Neighbours],
    params: RoutingParams,
    heldouts: list[str | None],
) -> dict[str | None, Pairs]:
    """`smoother_pairs` for every entry of `heldouts`, bit for bit, sharing the work.

    Leaving out one more task t changes only the points of d that have a neighbour from t
    among their first max(k, descriptor_k): every dataset's predictions are made once without
    t, and per t only those points are redone (a few percent), with the correct-call counts
    patched. So strict mode's 57 x 56 pairs cost about one pass instead of 57.
    """
    width = max(params.k, params.descriptor_k)
    base = {}
    for name in pool.datasets:
        nb = neighbours[name]
        positions = knn.first_allowed(nb, width)
        rows = np.take_along_axis(nb.index, positions[:, : params.k], axis=1)
        dists = np.take_along_axis(nb.distance, positions[:, : params.descriptor_k], axis=1)
        first = np.take_along_axis(nb.dataset, positions, axis=1)
        correct = pool.correct[pool.rows(name)].astype(bool)
        g = knn.predict_correctness(rows, pool.correct)
        hits = (g > params.threshold) == correct
        base[name] = (dists, first, correct, hits, hits.sum(axis=0), g)
    out: dict[str | None, Pairs] = {}
    for heldout in heldouts:
        code = None if heldout is None else pool.datasets.index(heldout)
        names, us, accs, s1s, s2s = [], [], [], [], []
        for name in pool.datasets:
            if name == heldout:
                continue
            dists, first, correct, hits, counts, g = base[name]
            redo = np.flatnonzero((first == code).any(axis=1)) if code is not None else []
            if len(redo):
                nb = neighbours[name]
                part = knn.Neighbours(nb.index[redo], nb.dataset[redo], nb.distance[redo])
                positions = knn.first_allowed(part, width, (code,))
                rows = np.take_along_axis(part.index, positions[:, : params.k], axis=1)
                new_g = knn.predict_correctness(rows, pool.correct)
                new_hits = (new_g > params.threshold) == correct[redo]
                counts = counts - hits[redo].sum(axis=0) + new_hits.sum(axis=0)
                # S1 and S2 from the whole g (a copy with the redone rows), as smoother_pairs
                # takes them, so the two agree bit for bit.
                g = g.copy()
                g[redo] = new_g
                dists = dists.copy()
                dists[redo] = np.take_along_axis(part.distance,
                                                 positions[:, : params.descriptor_k], axis=1)
            names.append(name)
            us.append(knn.knn_descriptor(dists))
            accs.append(counts / np.float64(len(correct)))
            s1s.append(scores.s1(g, params.k))
            s2s.append(scores.s2(g, params.threshold))
        out[heldout] = Pairs(names, np.asarray(us), np.vstack(accs), np.vstack(s1s),
                             np.vstack(s2s))
    return out


def smoother_heldouts(datasets: list[str], mode: str) -> list[str | None]:
    """The held-out sets of the smoother's pairs: None (the one leave-one-task-out pass that
    reference mode and new tasks use) and, in strict mode, every task (its nested pools)."""
    return [None, *datasets] if mode == "strict" else [None]


def pairs_table(
    pool: Pool,
    neighbours: dict[str, knn.Neighbours],
    params: RoutingParams,
    heldouts: list[str | None],
) -> pl.DataFrame:
    """`all_smoother_pairs` as the long table fit_smoother writes (`pairs_frame` per set).

    InputError first if a nested pool (a held-out task out of every other task's pool) cannot
    give some dataset's inputs their neighbours: the neighbour search checks only what it
    needs itself, so a change of mode does not rerun it.
    """
    if any(heldout is not None for heldout in heldouts):
        for name in pool.datasets:
            check_neighbour_supply(pool, name, max(params.k, params.descriptor_k), strict=True)
    every = all_smoother_pairs(pool, neighbours, params, heldouts)
    return pl.concat([pairs_frame(every[heldout], pool.models, heldout) for heldout in heldouts])


def pairs_frame(pairs: Pairs, models: list[str], heldout: str | None) -> pl.DataFrame:
    """Long table of pairs: heldout, dataset, model, u, acc (and s1, s2 when the pairs have
    them)."""
    n_d, n_m = pairs.acc.shape
    columns = {
        "heldout": pl.Series([heldout] * (n_d * n_m), dtype=pl.String),
        "dataset": np.repeat(pairs.datasets, n_m),
        "model": np.tile(models, n_d),
        "u": np.repeat(pairs.u, n_m),
        "acc": pairs.acc.reshape(-1),
    }
    if pairs.s1 is not None and pairs.s2 is not None:
        columns |= {"s1": pairs.s1.reshape(-1), "s2": pairs.s2.reshape(-1)}
    return pl.DataFrame(columns)


def pairs_rows(frame: pl.DataFrame, heldout: str | None) -> pl.DataFrame:
    """The `pairs_frame` rows of one set of pairs: those computed with `heldout` out of every
    pool, or with heldout None the one leave-one-task-out pass over the benchmark."""
    return frame.filter(
        pl.col("heldout").is_null() if heldout is None else pl.col("heldout") == heldout
    )


def pairs_from_frame(frame: pl.DataFrame, models: list[str], heldout: str | None,
                     drop: str | None = None) -> Pairs:
    """Select one set of pairs back out of `pairs_frame` rows (optionally dropping a dataset)."""
    rows = pairs_rows(frame, heldout)
    if drop is not None:
        rows = rows.filter(pl.col("dataset") != drop)
    def wide(values: str) -> pl.DataFrame:
        return rows.pivot(on="model", index=["dataset", "u"], values=values).sort("dataset")

    acc = wide("acc")
    # Pairs tables written before S1 and S2 were kept have neither.
    extra = [wide(c).select(models).to_numpy() if c in rows.columns else None
             for c in ("s1", "s2")]
    return Pairs(acc["dataset"].to_list(), acc["u"].to_numpy(), acc.select(models).to_numpy(),
                 *extra)


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
    p: np.ndarray | None = None,
) -> pl.DataFrame:
    """Scores and picks of every model on one task.

    g: (n_points, n_models) predicted correctness; u: the task's descriptor;
    bma_scores: (n_models,) mean per-task accuracy on the benchmark tasks BMA may use;
    tiebreak: (n_models,) mean accuracy on the training pool; correct: (n_points, n_models)
    true correctness, or None for an unlabelled task; p: (n_models,) the smoother's estimate when
    the caller computed it (another descriptor or bandwidth), else the `knn` smoother's.
    Returns one row per model: model, s1, s2, p, s3, accuracy, p_true, bma_score, n_pos,
    and a boolean pick_<method> column per method. Per-instance routing (argmax_m g_m(x) per
    input) is not one model, so it has no pick_ flag: routed_share is the share of inputs
    it sends to each model and per_instance_accuracy its accuracy (same on every row).
    """
    rng = task_rng(params.seed, task)
    s1 = scores.s1(g, params.k)
    s2 = scores.s2(g, params.threshold)
    if p is None:
        if not computes_own_p(params):
            raise ValueError(f"descriptor {params.descriptor!r} with bandwidth "
                             f"{params.bandwidth!r}: pass p (see task_scores)")
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
    routed = scores.route_instances(g, tiebreak, models)
    routed_share = np.bincount(routed, minlength=len(models)) / max(n, 1)
    accuracy = p_true = per_instance_accuracy = None
    if correct is not None:
        accuracy = correct.mean(axis=0, dtype=np.float64)
        p_true = scores.predictor_accuracy(g, correct, params.threshold)
        s3_true = scores.s3(s2, p_true)
        # Its own draws: from the task's shared stream they would depend on how many S3's
        # check consumed, so on the smoother, which S3 with the true p does not use.
        picks["s3_true_p"] = scores.pick_s3(s3_true, predicted, p_true, bma, tiebreak, models,
                                            task_rng(params.seed, task, stream=1),
                                            params.fallback_share, params.draws)
        picks["oracle"] = scores.pick(accuracy, tiebreak, models)
        per_instance_accuracy = np.full(len(models), correct[np.arange(n), routed].mean())
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
            "routed_share": routed_share,
            "per_instance_accuracy": pl.Series(_or_nulls(per_instance_accuracy, len(models)),
                                               dtype=pl.Float64),
        }
    )
    flags = {f"pick_{m}": np.arange(len(models)) == picks.get(m, -1) for m in METHODS}
    return frame.with_columns(**{k: pl.Series(v) for k, v in flags.items()})


# The smoother descriptors of the workflow (config smoother.descriptor).
DESCRIPTORS = ("knn", "ot", "agreement")

# Methods that pick one model per task: each has exactly one pick_<method> row per task.
METHODS = ["s1", "s2", "s3", "s3_true_p", "bma", "oracle"]
# Every evaluated method: per-instance routing picks a model per input (see score_task).
ALL_METHODS = [*METHODS, "per_instance"]


def _or_nulls(values: np.ndarray | None, n: int) -> list | np.ndarray:
    """`values`, or n nulls for a column that an unlabelled task cannot fill."""
    return [None] * n if values is None else values


def smoother_p(
    u: float,
    pairs: Pairs,
    descriptor: str,
    bandwidth: float,
    ot_row: dict[str, float] | None = None,
    g: np.ndarray | None = None,
    threshold: float = 0.5,
    k: int | None = None,
) -> np.ndarray:
    """p(t, m) (n_models,) with the chosen descriptor.

    descriptor "knn": kernel on |u(t) - u(d)| (the paper); "ot": kernel on the OT distance
    D(t, d) from `ot_row` (dataset -> distance from t), over the same pairs; "agreement":
    S2 S1 + (1 - S2)(1 - S1) of the task's own predictions `g` (n_points, n_models), no pairs
    and no bandwidth.
    """
    if descriptor == "agreement":
        if g is None:
            raise ValueError("descriptor 'agreement' needs the task's predictions g")
        return smoother.agreement_p(g, threshold, k)
    if descriptor == "knn":
        return smoother.smooth(u, pairs.u, pairs.acc, bandwidth)
    if descriptor == "ot":
        if ot_row is None:
            raise ValueError("descriptor 'ot' needs the task's row of OT distances")
        missing = [d for d in pairs.datasets if d not in ot_row]
        if missing:
            raise ValueError(f"no OT distance to {missing[:3]}")
        dist = np.array([ot_row[d] for d in pairs.datasets])
        return smoother.smooth_by_distance(dist, pairs.acc, bandwidth)
    raise ValueError(f"unknown descriptor {descriptor!r}; known: {', '.join(DESCRIPTORS)}")


def task_pairs(pairs_table: pl.DataFrame, models: list[str], task: str | None,
               datasets: list[str], mode: str) -> Pairs:
    """The smoother pairs `task` is scored with: in strict mode recomputed with the task out of
    every pool, in reference mode the one leave-one-task-out pass; never the task's own pair.
    A task outside the benchmark (a user's new task, or None) gets the whole pass."""
    if task is not None and task in datasets:
        return pairs_from_frame(pairs_table, models, task if mode == "strict" else None,
                                drop=task)
    return pairs_from_frame(pairs_table, models, None)


def computes_own_p(params: RoutingParams) -> bool:
    """True when `score_task` computes p itself: the paper's knn smoother at a fixed
    bandwidth. Any other descriptor, or bandwidth auto, needs p from the caller."""
    return params.descriptor == "knn" and params.bandwidth != "auto"


def task_baselines(pool: Pool, task: str, mode: str, accuracy: np.ndarray | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(bma_scores, tiebreak) (n_models,) for scoring `task`.

    bma_scores: mean per-task accuracy over the tasks BMA may use (strict: every benchmark
    task but `task`; reference, as the authors' code: all of them); tiebreak: mean accuracy
    on the training pool, which never holds the task's own rows. A new task (not in the pool)
    gets both over the whole pool. accuracy: `pool.task_accuracy()` when the caller has it
    (it costs more than the rest, and loops over tasks need it once).
    """
    if accuracy is None:
        accuracy = pool.task_accuracy()
    if task not in pool.datasets:
        return accuracy.mean(axis=0), pool.correct.mean(axis=0)
    code = pool.datasets.index(task)
    others = np.arange(len(pool.datasets)) != code
    bma_scores = accuracy[others].mean(axis=0) if mode == "strict" else accuracy.mean(axis=0)
    return bma_scores, pool.correct[pool.dataset_of != code].mean(axis=0)


def fitted_bandwidth(fitted: pl.DataFrame, task: str, datasets: list[str]) -> float:
    """The bandwidth fit_bandwidth chose for `task` (its row of results/smoother/bandwidth;
    a new task's row has task null)."""
    rows = fitted.filter(pl.col("task") == task if task in datasets
                         else pl.col("task").is_null())
    if rows.height != 1:
        raise ValueError(f"the bandwidth table has {rows.height} rows for task {task!r}, "
                         "expected 1")
    return float(rows["bandwidth"].item())


def task_scores(
    task: str,
    neighbours: knn.Neighbours,
    pool: Pool,
    pairs_table: pl.DataFrame,
    params: RoutingParams,
    fitted: pl.DataFrame | None = None,
    ot_row: dict[str, float] | None = None,
) -> pl.DataFrame:
    """`score_task`'s table for one task, benchmark or new, from the workflow's artifacts.

    neighbours: the task's neighbour lists; pairs_table: results/smoother/pairs.parquet;
    fitted: results/smoother/bandwidth.parquet, needed by any descriptor other than `knn`
    and `agreement` or by bandwidth auto; ot_row: the task's OT distances (descriptor `ot`).
    A benchmark task is scored with its own labels (accuracy, p_true); a new task without.
    """
    g, u = task_predictions(neighbours, pool, params)
    pairs = task_pairs(pairs_table, pool.models, task, pool.datasets, params.mode)
    bma_scores, tiebreak = task_baselines(pool, task, params.mode)
    correct = pool.correct[pool.rows(task)] if task in pool.datasets else None
    p = None
    if params.descriptor == "agreement":
        # No smoother: p from the task's own S1 and S2.
        p = smoother_p(u, pairs, params.descriptor, float("nan"), g=g,
                       threshold=params.threshold, k=params.k)
    elif not computes_own_p(params):
        if fitted is None:
            raise ValueError(f"descriptor {params.descriptor!r} with bandwidth "
                             f"{params.bandwidth!r} needs the fitted bandwidth table")
        p = smoother_p(u, pairs, params.descriptor,
                       fitted_bandwidth(fitted, task, pool.datasets), ot_row)
    return score_task(task, g, u, pairs, bma_scores, tiebreak, pool.models, params, correct, p)
