"""Can anything without labels of the task predict its shift a - S1? A study on a finished run.

p_error_analysis.py shows that the error of p(t, m) is mostly S1's error as an estimate of the
model's accuracy a on t, and that this error is mostly one shift per task, shared by all models.
This script tries, strictly leave-one-task-out (nothing of t, neither its labels nor its place in
any training pool, is used), estimators of a that need no labels of t, and prints for each the
mean |p - p_true| of p = S2 a_hat + (1 - S2)(1 - a_hat) and the correlation of its task shift
(mean over models of a_hat - S1) with the true one:

- S1 from more neighbours (k = 10, 19, 38);
- a linear probe: per-model ridge regression of correctness on the embeddings;
- a question-level regression of the residual mean_m (correct - g) on the embeddings, or on
  surface features of the text (length, digits, symbols, negations);
- a task-level regression of the shift on (mean S1, mean S2, spread of S1 over models, u(t));
- the other tasks' shifts, kernel-weighted by OT distance to t (best bandwidth of a grid chosen
  on t itself: an optimistic figure, and it still does not help);
- the mean shift of the other tasks at the education level the subject's name states
  (elementary, high_school, college, professional, or none), a share of it added to S1;
and, as a bound that does use t's labels, S1 plus t's own true mean shift.

A second table estimates p directly rather than through a_hat. Each row gives the mean
|p - p_true|, the correlation over (task, model) of its errors p - p_true with agreement's, and
(but for the mixtures) their mean, the bias:

- a median (least absolute error, the metric's own loss) regression of p_true on the task's
  unlabelled features (agreement p, S1, S2, 2 S2 - 1, u(t), mean and spread of S1 over models),
  fitted strictly on the other tasks;
- estimators of a classifier's accuracy under shift from its confidence on unlabelled inputs,
  calibrated per model on the other tasks' inputs: histogram binning (the other tasks' share of
  right thresholded predictions at each value of g, weighted by the task's share of inputs at
  that value), ATC (Garg et al., ICLR 2022: the confidence max(g, 1 - g) threshold above which
  the other tasks' share of inputs equals their accuracy, ties split; p is the task's share
  above it) and DoC (Guillory et al., ICCV 2021: the other tasks' accuracy plus the task's mean
  confidence minus theirs);
- with the ablation's scores (results/report/ablation_scores.parquet), mixtures
  w p_agreement + (1 - w) p_other of the workflow's own p estimates, w the best of a grid chosen
  on the scored tasks themselves (optimistic: an upper bound on what such a mixture does).

    .venv/bin/python benchmarks/p_error_shift_predictors.py [--results benchmarks/out/noop/results]
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import polars as pl
from sklearn.linear_model import QuantileRegressor, Ridge

from _common import HELM_MMLU
from p_error_analysis import load_run, per_task_model

from llmrouter import knn, scores, smoother
from llmrouter.pool import Pool
from llmrouter.routing import RoutingParams, task_predictions
from llmrouter.store import read_embeddings, read_ot_matrix

PARAMS = RoutingParams(mode="strict")
RIDGE = 10.0  # ridge penalty of the embedding and surface regressions (1 to 1000: same ranking)
OT_BANDWIDTHS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5)
# The education levels MMLU subject names start with; the others share one group.
EDUCATION_LEVELS = ("elementary", "high_school", "college", "professional")
EDUCATION_SHARES = (0.25, 0.5, 1.0)
MIX_WEIGHTS = tuple(np.round(np.arange(0.0, 1.01, 0.05), 2))
# The ablation variants whose p is mixed with agreement's (all strict, no labels of the task).
MIX_VARIANTS = ("strict, ot, auto bandwidth", "strict, calibration, auto bandwidth", "strict")


@dataclass(frozen=True)
class Run:
    """What the study needs from a finished strict run. a, s1, s2, p_true: (n_tasks, n_models)
    for the workflow's predictor, each task out of its own pool; u: (n_tasks,); vectors:
    (n_pool, dim) in pool order; surface: (n_pool, n_features) standardised."""

    pool: Pool
    neighbours: dict[str, knn.Neighbours]
    a: np.ndarray
    s1: np.ndarray
    s2: np.ndarray
    p_true: np.ndarray
    u: np.ndarray
    vectors: np.ndarray
    surface: np.ndarray
    ot: dict[str, dict[str, float]]


def surface_features(text: str) -> list[float]:
    """Difficulty cues that an embedding of normalised length can miss."""
    n = max(len(text), 1)
    words = text.split()
    return [np.log1p(len(text)), np.log1p(len(words)),
            sum(c.isdigit() for c in text) / n, sum(c.isupper() for c in text) / n,
            float(text.count("\n")), float(np.mean([len(w) for w in words])) if words else 0.0,
            float(text.count("?")), sum(c in "+-*/=^" for c in text) / n,
            float(len(re.findall(r"\b(not|NOT|except|EXCEPT|least|LEAST)\b", text)))]


def subject_education(task: str) -> str:
    """The education level a subject's name starts with, "other" where it names none."""
    return next((e for e in EDUCATION_LEVELS if task.startswith(e)), "other")


def pool_vectors(results: Path, pool: Pool) -> np.ndarray:
    """(n_pool, dim) the run's embeddings in pool order."""
    parts, rows = [], []
    for task in pool.datasets:
        ids, vectors = read_embeddings(results / "embeddings" / f"{task}.parquet")
        if not np.array_equal(pool.instance_ids[pool.rows(task)], ids):
            raise SystemExit(f"{results}/embeddings/{task}.parquet: rows not in pool order")
        parts.append(vectors)
        rows.append(pool.rows(task))
    out = np.empty((len(pool.instance_ids), parts[0].shape[1]), dtype=np.float32)
    out[np.concatenate(rows)] = np.vstack(parts)
    return out


def pool_surface(table: Path, pool: Pool) -> np.ndarray:
    """(n_pool, n_features) standardised `surface_features` of the pool's question texts."""
    texts = pl.scan_parquet(table).select("instance_id", "text").unique("instance_id").collect()
    text_of = dict(zip(texts["instance_id"].to_list(), texts["text"].to_list()))
    features = np.array([surface_features(text_of[i]) for i in pool.instance_ids])
    spread = features.std(axis=0)
    return (features - features.mean(axis=0)) / np.where(spread > 0, spread, 1.0)


def load(results: Path, table: Path) -> Run:
    """The run's pool, lists, per-task scores, embeddings and OT matrix; texts from `table`."""
    pool, neighbours = load_run(results)
    scored = per_task_model(pool, neighbours, PARAMS)
    shape = (len(pool.datasets), len(pool.models))
    arrays = {c: scored[c].to_numpy().reshape(shape) for c in ("a", "s1", "s2", "p_true")}
    return Run(pool, neighbours, u=scored["u"].to_numpy().reshape(shape)[:, 0],
               vectors=pool_vectors(results, pool), surface=pool_surface(table, pool),
               ot=read_ot_matrix(results / "distances.parquet"), **arrays)


def p_error(run: Run, a_hat: np.ndarray) -> float:
    """Mean over tasks and models of |S2 a_hat + (1 - S2)(1 - a_hat) - p_true|."""
    p = smoother.agreement(np.clip(a_hat, 0.0, 1.0), run.s2)
    return float(np.abs(p - run.p_true).mean())


@dataclass(frozen=True)
class Others:
    """The training side of one held-out task, strictly: every other task d with g from a pool
    without d and without the held-out task. residual: (n_rows,) mean_m (correct - g) of d's
    rows; rows: (n_rows,) their pool rows; s1, s2, p_true: (n_others, n_models); u:
    (n_others,); level_rows, level_right: (k + 1, n_models) how many of the other tasks' inputs
    have g = level / k and how many of those the thresholded predictor gets right."""

    residual: np.ndarray
    rows: np.ndarray
    s1: np.ndarray
    s2: np.ndarray
    p_true: np.ndarray
    u: np.ndarray
    level_rows: np.ndarray
    level_right: np.ndarray


def g_levels(g: np.ndarray) -> np.ndarray:
    """g * k as integers: g is a mean over k neighbours' 0/1 correctness."""
    scaled = g * PARAMS.k
    levels = np.rint(scaled).astype(np.int64)
    if not np.allclose(scaled, levels):
        raise SystemExit(f"g is not a multiple of 1/{PARAMS.k}: the level estimators need it")
    return levels


def level_counts(levels: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """(k + 1, n_models) per level, how many inputs (of `weights`' ones) sit at it."""
    w = np.ones(levels.shape) if weights is None else weights
    return np.stack([((levels == lv) * w).sum(axis=0) for lv in range(PARAMS.k + 1)])


def others_without(run: Run, code: int) -> Others:
    """`Others` of held-out task `code`."""
    residual, rows, s1, s2, p_true, u = [], [], [], [], [], []
    level_rows = level_right = np.zeros((PARAMS.k + 1, len(run.pool.models)))
    for other, task in enumerate(run.pool.datasets):
        if other == code:
            continue
        g, task_u = task_predictions(run.neighbours[task], run.pool, PARAMS, (code,))
        task_rows = run.pool.rows(task)
        correct = run.pool.correct[task_rows]
        residual.append((correct - g).mean(axis=1))
        rows.append(task_rows)
        s1.append(scores.s1(g, PARAMS.k))
        s2.append(scores.s2(g, PARAMS.threshold))
        p_true.append(scores.predictor_accuracy(g, correct, PARAMS.threshold))
        u.append(task_u)
        levels = g_levels(g)
        level_rows = level_rows + level_counts(levels)
        level_right = level_right + level_counts(
            levels, (g > PARAMS.threshold) == correct.astype(bool))
    return Others(np.concatenate(residual), np.concatenate(rows), np.array(s1), np.array(s2),
                  np.array(p_true), np.array(u), level_rows, level_right)


def confidence_estimates(task_share: np.ndarray, others: Others) -> dict[str, np.ndarray]:
    """(n_models,) p of histogram binning, ATC and DoC (module docstring) for a task whose
    inputs are spread over g's levels as task_share (k + 1, n_models), calibrated on `others`."""
    levels = np.arange(PARAMS.k + 1) / PARAMS.k
    confidence = np.maximum(levels, 1 - levels)[:, None]
    other_share = others.level_rows / others.level_rows.sum(axis=0)
    other_acc = others.level_right.sum(axis=0) / others.level_rows.sum(axis=0)
    binned = np.divide(others.level_right, others.level_rows,
                       out=np.full(others.level_rows.shape, 0.5), where=others.level_rows > 0)
    # ATC: the other tasks' accuracy is filled from the most confident inputs down; g has only
    # k + 1 values, so the threshold falls inside a confidence value, whose inputs (both its
    # levels, g and 1 - g) then count in the same part.
    values, group = np.unique(-confidence[:, 0], return_inverse=True)
    per_value = np.zeros((len(values), other_share.shape[1]))
    np.add.at(per_value, group, other_share)
    above = np.cumsum(per_value, axis=0) - per_value
    taken = np.clip(other_acc - above, 0.0, per_value)
    weight = np.divide(taken, per_value, out=np.zeros_like(taken), where=per_value > 0)[group]
    return {"histogram binning (per model and level of g)": (task_share * binned).sum(axis=0),
            "ATC, average thresholded confidence": (task_share * weight).sum(axis=0),
            "DoC, difference of confidences": np.clip(
                other_acc + ((task_share - other_share) * confidence).sum(axis=0), 0.0, 1.0)}


def task_level(s1: np.ndarray, s2: np.ndarray, u: np.ndarray) -> np.ndarray:
    """(n_tasks, 4) features of a task's predictions that need no labels."""
    return np.column_stack([s1.mean(axis=1), s2.mean(axis=1), s1.std(axis=1), u])


def p_features(s1: np.ndarray, s2: np.ndarray, u: np.ndarray) -> np.ndarray:
    """(n_tasks * n_models, 7) unlabelled features of p, one row per (task, model)."""
    every = np.ones_like(s1)
    return np.column_stack([c.ravel() for c in (
        smoother.agreement(s1, s2), s1, s2, 2 * s2 - 1, u[:, None] * every,
        s1.mean(axis=1, keepdims=True) * every, s1.std(axis=1, keepdims=True) * every)])


def estimates(run: Run) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """a_hat (n_tasks, n_models) of every estimator of a, and p (n_tasks, n_models) of every
    direct estimator of p (the median regression, binning, ATC, DoC), each task held out."""
    pool = run.pool
    probe, residual_emb, residual_surface, level, median = (
        np.zeros_like(run.s1) for _ in range(5))
    by_ot = [np.zeros_like(run.s1) for _ in OT_BANDWIDTHS]
    by_education = [np.zeros_like(run.s1) for _ in EDUCATION_SHARES]
    educations = np.array([subject_education(t) for t in pool.datasets])
    by_confidence: dict[str, np.ndarray] = {}
    for code, task in enumerate(pool.datasets):
        rows, train = pool.rows(task), pool.dataset_of != code
        probe[code] = Ridge(RIDGE).fit(run.vectors[train], pool.correct[train]).predict(
            run.vectors[rows]).clip(0, 1).mean(axis=0)
        others = others_without(run, code)
        g = task_predictions(run.neighbours[task], pool, PARAMS)[0]
        task_share = level_counts(g_levels(g)) / len(rows)
        for name, p in confidence_estimates(task_share, others).items():
            by_confidence.setdefault(name, np.zeros_like(run.s1))[code] = p
        for out, features in ((residual_emb, run.vectors), (residual_surface, run.surface)):
            fit = Ridge(RIDGE).fit(features[others.rows], others.residual)
            out[code] = run.s1[code] + fit.predict(features[rows]).mean()
        kept = np.arange(len(pool.datasets)) != code
        true_shift = (run.a[kept] - others.s1).mean(axis=1)
        fit = Ridge(1e-3).fit(task_level(others.s1, others.s2, others.u), true_shift)
        level[code] = run.s1[code] + fit.predict(
            task_level(run.s1[code:code + 1], run.s2[code:code + 1], run.u[code:code + 1]))[0]
        fit = QuantileRegressor(quantile=0.5, alpha=0.0, solver="highs").fit(
            p_features(others.s1, others.s2, others.u), others.p_true.ravel())
        median[code] = fit.predict(p_features(run.s1[code:code + 1], run.s2[code:code + 1],
                                              run.u[code:code + 1]))
        dist = np.array([run.ot[task][d] for d in np.asarray(pool.datasets)[kept]])
        for out, bw in zip(by_ot, OT_BANDWIDTHS):
            out[code] = run.s1[code] + smoother.distance_weights(dist, bw) @ true_shift
        same = educations[kept] == educations[code]
        education_shift = true_shift[same].mean() if same.any() else 0.0
        for out, share in zip(by_education, EDUCATION_SHARES):
            out[code] = run.s1[code] + share * education_shift
    best = int(np.argmin([p_error(run, table) for table in by_ot]))
    out = {"linear probe (ridge on embeddings, per model)": probe,
           "residual regression on embeddings": residual_emb,
           "residual regression on surface features": residual_surface,
           "task-level regression (S1, S2, spread, u)": level,
           f"OT neighbours' shifts (bandwidth {OT_BANDWIDTHS[best]:g}, best of grid)":
               by_ot[best]}
    for table, share in zip(by_education, EDUCATION_SHARES):
        out[f"{share:g} x the mean shift of the subject's education level"] = table
    for k in (10, 19, 38):
        params = replace(PARAMS, k=k)
        out[f"S1 from k = {k} neighbours"] = np.array(
            [scores.s1(task_predictions(run.neighbours[t], pool, params)[0], k)
             for t in pool.datasets])
    return out, {"median regression of p_true on unlabelled features": median, **by_confidence}


def mixtures(run: Run, ablation_scores: Path) -> dict[str, tuple[float, float, float]]:
    """Per MIX_VARIANTS: (best w, mean |p - p_true|) of w p_agreement + (1 - w) p_variant,
    w chosen on the scored tasks (optimistic), and the correlation of the two estimates'
    errors p - p_true over (task, model). Tasks and models in the run's order."""
    frame = pl.read_parquet(ablation_scores, columns=["variant", "seed", "task", "model", "p"])
    order = pl.DataFrame({"task": np.repeat(run.pool.datasets, len(run.pool.models)),
                          "model": run.pool.models * len(run.pool.datasets)})
    agreement = smoother.agreement(run.s1, run.s2)
    out = {}
    for variant in MIX_VARIANTS:
        rows = order.join(frame.filter((pl.col("variant") == variant) & (pl.col("seed") == 0)),
                          on=["task", "model"], how="left", maintain_order="left")
        if rows["p"].null_count():
            raise SystemExit(f"{ablation_scores}: variant {variant!r} lacks some (task, model)")
        other = rows["p"].to_numpy().reshape(run.s1.shape)
        errors = [np.abs(w * agreement + (1 - w) * other - run.p_true).mean()
                  for w in MIX_WEIGHTS]
        best = int(np.argmin(errors))
        corr = np.corrcoef((agreement - run.p_true).ravel(), (other - run.p_true).ravel())[0, 1]
        out[variant] = (float(MIX_WEIGHTS[best]), float(errors[best]), float(corr))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path,
                        default=Path(__file__).parent / "out" / "noop" / "results")
    parser.add_argument("--table", type=Path, default=HELM_MMLU,
                        help="the run's table (for the question texts)")
    args = parser.parse_args()
    for needed in (args.results / "pool" / "correctness.parquet",
                   args.results / "distances.parquet", args.table):
        if not needed.exists():
            raise SystemExit(f"{needed}: missing; build a full run first, e.g. "
                             "benchmarks/bench_noop.py --repeats 1")
    run = load(args.results, args.table)
    true_shift = (run.a - run.s1).mean(axis=1)
    by_a, by_p = estimates(run)
    rows = [("S1 (agreement, the workflow's estimator)", run.s1), *by_a.items()]
    print(f"{'estimator of a (no labels of the task)':62s} p error  corr(shift)")
    for name, a_hat in rows:
        shift = (a_hat - run.s1).mean(axis=1)
        corr = f"{np.corrcoef(shift, true_shift)[0, 1]:+.3f}" if shift.std() > 0 else "  -"
        print(f"{name:62s} {p_error(run, a_hat):.4f}   {corr}")
    print(f"{'bound: S1 + the task own true mean shift (uses its labels)':62s} "
          f"{p_error(run, run.s1 + true_shift[:, None]):.4f}   +1.000")
    print(f"\n{'estimator of p (no labels of the task)':72s} p error  corr(errors)  bias")
    agreement = smoother.agreement(run.s1, run.s2)
    agreement_error = (agreement - run.p_true).ravel()
    for name, p in {"agreement": agreement, **by_p}.items():
        error = (p - run.p_true).ravel()
        corr = np.corrcoef(agreement_error, error)[0, 1]
        print(f"{name:72s} {np.abs(error).mean():.4f}   {corr:+.3f}        {error.mean():+.4f}")
    ablation_scores = args.results / "report" / "ablation_scores.parquet"
    if not ablation_scores.exists():
        print(f"(no {ablation_scores}: mixtures with the ablation's p skipped)")
        return
    for variant, (w, error, corr) in mixtures(run, ablation_scores).items():
        name = f"{w:g} agreement + {1 - w:g} '{variant}' (best w)"
        print(f"{name:72s} {error:.4f}   {corr:+.3f}")


if __name__ == "__main__":
    main()
