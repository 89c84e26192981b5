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
and, as a bound that does use t's labels, S1 plus t's own true mean shift.

    .venv/bin/python benchmarks/p_error_shift_predictors.py [--results benchmarks/out/noop/results]
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from _common import HELM_MMLU, REPO  # noqa: F401  (puts the repository on sys.path)

from llmrouter import knn, scores, smoother
from llmrouter.pool import Pool
from llmrouter.store import read_embeddings, read_neighbours, read_ot_matrix, read_pool

RIDGE = 10.0  # ridge penalty of every regression (the ranking does not change from 1 to 1000)
OT_BANDWIDTHS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5)


@dataclass(frozen=True)
class Run:
    """What the study needs from a finished strict run. a, s1, s2, p_true: (n_tasks, n_models),
    s1/s2/p_true of the k = 5 predictor with the task out of the pool; vectors: (n_pool, dim);
    surface: (n_pool, n_features) standardised; u: (n_tasks,)."""

    pool: Pool
    neighbours: dict[str, knn.Neighbours]
    a: np.ndarray
    s1: np.ndarray
    s2: np.ndarray
    p_true: np.ndarray
    vectors: np.ndarray
    surface: np.ndarray
    u: np.ndarray
    ot: dict[str, dict[str, float]]


def predictions(pool: Pool, lists: knn.Neighbours, k: int,
                exclude: tuple[int, ...] = ()) -> np.ndarray:
    """g (n, n_models) float64 of one task's points from its lists, `exclude` out of the pool."""
    rows = np.take_along_axis(lists.index, knn.first_allowed(lists, k, exclude), axis=1)
    return knn.predict_correctness(rows, pool.correct).astype(np.float64)


def surface_features(text: str) -> list[float]:
    """Difficulty cues an embedding of normalised length can miss."""
    n = max(len(text), 1)
    words = text.split()
    return [np.log1p(len(text)), np.log1p(len(words)),
            sum(c.isdigit() for c in text) / n, sum(c.isupper() for c in text) / n,
            float(text.count("\n")), float(np.mean([len(w) for w in words])) if words else 0.0,
            float(text.count("?")), sum(c in "+-*/=^" for c in text) / n,
            float(len(re.findall(r"\b(not|NOT|except|EXCEPT|least|LEAST)\b", text)))]


def load(results: Path, table: Path) -> Run:
    """The run's pool, lists, embeddings, OT matrix and per-task scores; texts from `table`."""
    pool = read_pool(results / "pool" / "correctness.parquet", results / "pool" / "models.parquet")
    neighbours = {t: read_neighbours(results / "neighbours" / f"{t}.parquet")[1]
                  for t in pool.datasets}
    vectors = np.zeros((len(pool.instance_ids), 0), dtype=np.float32)
    for task in pool.datasets:
        ids, v = read_embeddings(results / "embeddings" / f"{task}.parquet")
        rows = pool.rows(task)
        if not np.array_equal(pool.instance_ids[rows], ids):
            raise SystemExit(f"{results}/embeddings/{task}.parquet: rows not in pool order")
        if vectors.shape[1] == 0:
            vectors = np.zeros((len(pool.instance_ids), v.shape[1]), dtype=np.float32)
        vectors[rows] = v
    texts = (pl.scan_parquet(table).select("instance_id", "text").unique("instance_id")
             .collect())
    text_of = dict(zip(texts["instance_id"].to_list(), texts["text"].to_list()))
    surface = np.array([surface_features(text_of[i]) for i in pool.instance_ids])
    surface = (surface - surface.mean(0)) / np.where(surface.std(0) > 0, surface.std(0), 1.0)
    rows = {"a": [], "s1": [], "s2": [], "p_true": [], "u": []}
    for task in pool.datasets:
        lists = neighbours[task]
        g = predictions(pool, lists, 5)
        correct = pool.correct[pool.rows(task)]
        rows["a"].append(correct.mean(axis=0, dtype=np.float64))
        rows["s1"].append(scores.s1(g))
        rows["s2"].append(scores.s2(g))
        rows["p_true"].append(scores.predictor_accuracy(g, correct))
        positions = knn.first_allowed(lists, 19)
        rows["u"].append(knn.knn_descriptor(np.take_along_axis(lists.distance, positions, 1)))
    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in rows.items()}
    return Run(pool, neighbours, vectors=vectors, surface=surface,
               ot=read_ot_matrix(results / "distances.parquet"), **arrays)


def p_error(run: Run, a_hat: np.ndarray) -> float:
    """Mean over tasks and models of |S2 a_hat + (1 - S2)(1 - a_hat) - p_true|."""
    p = smoother.agreement(np.clip(a_hat, 0.0, 1.0), run.s2)
    return float(np.abs(p - run.p_true).mean())


def ridge(z: np.ndarray, y: np.ndarray, penalty: float = RIDGE) -> np.ndarray:
    """Ridge coefficients of y on z plus an intercept column (penalised like the rest, which
    changes nothing at these penalties and sample sizes)."""
    zb = np.hstack([z, np.ones((len(z), 1))])
    return np.linalg.solve(zb.T @ zb + penalty * np.eye(zb.shape[1]), zb.T @ y)


def apply(z: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Predictions of `ridge` coefficients."""
    return np.hstack([z, np.ones((len(z), 1))]) @ w


def others_without(run: Run, code: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The training side of held-out task `code`, strictly: every other task d's residual rows
    mean_m (correct - g) with g from a pool without d and without the held-out task; their pool
    rows; and each other task's (S1, S2) (n_others, n_models) on the same terms."""
    residuals, rows, s1, s2 = [], [], [], []
    for other, task in enumerate(run.pool.datasets):
        if other == code:
            continue
        task_rows = run.pool.rows(task)
        g = predictions(run.pool, run.neighbours[task], 5, (code,))
        residuals.append((run.pool.correct[task_rows] - g).mean(axis=1))
        rows.append(task_rows)
        s1.append(scores.s1(g))
        s2.append(scores.s2(g))
    return np.concatenate(residuals), np.concatenate(rows), np.array(s1), np.array(s2)


def task_level(s1: np.ndarray, s2: np.ndarray, u: np.ndarray) -> np.ndarray:
    """(n_tasks, 4) features of a task's predictions that need no labels."""
    return np.column_stack([s1.mean(1), s2.mean(1), s1.std(1), u])


def estimates(run: Run) -> dict[str, np.ndarray]:
    """a_hat (n_tasks, n_models) of every estimator, each task held out."""
    pool, n_tasks = run.pool, len(run.pool.datasets)
    out = {name: np.zeros_like(run.s1) for name in
           ("linear probe (ridge on embeddings, per model)",
            "residual regression on embeddings", "residual regression on surface features",
            "task-level regression (S1, S2, spread, u)")}
    ot_best = np.full(len(OT_BANDWIDTHS), 0.0)
    ot_tables = [np.zeros_like(run.s1) for _ in OT_BANDWIDTHS]
    correct = pool.correct.astype(np.float64)
    for code, task in enumerate(pool.datasets):
        rows = pool.rows(task)
        train = pool.dataset_of != code
        probe = ridge(run.vectors[train].astype(np.float64), correct[train])
        out["linear probe (ridge on embeddings, per model)"][code] = apply(
            run.vectors[rows].astype(np.float64), probe).clip(0, 1).mean(0)
        residual, other_rows, s1_o, s2_o = others_without(run, code)
        for name, features in (("residual regression on embeddings", run.vectors),
                               ("residual regression on surface features", run.surface)):
            w = ridge(features[other_rows].astype(np.float64), residual)
            shift = apply(features[rows].astype(np.float64), w).mean()
            out[name][code] = run.s1[code] + shift
        others = np.arange(n_tasks) != code
        true_shift_o = (run.a[others] - s1_o).mean(1)
        w = ridge(task_level(s1_o, s2_o, run.u[others]), true_shift_o, penalty=1e-3)
        shift = apply(task_level(run.s1[code:code + 1], run.s2[code:code + 1],
                                 run.u[code:code + 1]), w)[0]
        out["task-level regression (S1, S2, spread, u)"][code] = run.s1[code] + shift
        dist = np.array([run.ot[task][d] for d in np.asarray(pool.datasets)[others]])
        for j, bw in enumerate(OT_BANDWIDTHS):
            ot_tables[j][code] = run.s1[code] + smoother.distance_weights(dist, bw) @ true_shift_o
    for j, table in enumerate(ot_tables):
        ot_best[j] = p_error(run, table)
    best = int(np.argmin(ot_best))
    out[f"OT neighbours' shifts (bandwidth {OT_BANDWIDTHS[best]:g}, best of grid)"] = \
        ot_tables[best]
    for k in (10, 19, 38):
        out[f"S1 from k = {k} neighbours"] = np.array(
            [scores.s1(predictions(pool, run.neighbours[t], k)) for t in pool.datasets])
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
    true_shift = (run.a - run.s1).mean(1)
    rows = [("S1 (agreement, the workflow's estimator)", run.s1)]
    rows += list(estimates(run).items())
    print(f"{'estimator of a (no labels of the task)':62s} p error  corr(shift)")
    for name, a_hat in rows:
        shift = (a_hat - run.s1).mean(1)
        corr = f"{np.corrcoef(shift, true_shift)[0, 1]:+.3f}" if shift.std() > 0 else "  -"
        print(f"{name:62s} {p_error(run, a_hat):.4f}   {corr}")
    print(f"{'bound: S1 + the task own true mean shift (uses its labels)':62s} "
          f"{p_error(run, run.s1 + true_shift[:, None]):.4f}   +1.000")


if __name__ == "__main__":
    main()
