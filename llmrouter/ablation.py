"""The ablation: every variant of the method scored in-process from the workflow's artifacts.

A variant changes one or more of: evaluation mode (strict / reference), the smoother's descriptor
(knn / ot / calibration / agreement), its bandwidth (fixed / auto), the BMA fallback of S3
(on / off) and alpha (labelled points of the scored task in the pool). All variants share one
pool, one set of neighbour lists, one OT matrix and one computation of the smoother pairs; a
variant with the workflow's settings reproduces its scores exactly (same library calls).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace

import numpy as np
import polars as pl

from llmrouter import alpha as alpha_mod
from llmrouter import bandwidth, evaluation, knn, scores, shift
from llmrouter.calibration import calibration_p, select_calibration_bandwidth
from llmrouter.pool import Pool
from llmrouter.routing import (
    ALL_METHODS,
    RoutingParams,
    pairs_rows,
    pairs_table,
    score_task,
    smoother_heldouts,
    smoother_p,
    task_baselines,
    task_pairs,
    task_predictions,
)
from llmrouter.smoother import PAPER_BANDWIDTH, agreement_p

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Variant:
    """One configuration of the method. bandwidth: a number or "auto"; alpha: share of the
    scored task's points that are labelled (0: none, the paper's main setting)."""

    name: str
    mode: str = "strict"
    descriptor: str = "knn"
    bandwidth: float | str = PAPER_BANDWIDTH
    fallback: bool = True
    alpha: float = 0.0


def default_variants(alphas: tuple[float, ...] = (0.04, 0.1),
                     ot_bandwidth: float = PAPER_BANDWIDTH) -> list[Variant]:
    """The variants of results/report/ablation.md: one change at a time from strict mode with the
    paper's smoother, then the combinations that matter."""
    variants = [
        Variant("reference (paper)", mode="reference"),
        Variant("strict"),
        Variant("strict, no fallback", fallback=False),
        Variant("strict, auto bandwidth", bandwidth="auto"),
        # The paper's sigma on OT distances, which have another scale than u: for contrast.
        Variant(f"strict, ot, bandwidth {ot_bandwidth:g}", descriptor="ot",
                bandwidth=ot_bandwidth),
        Variant("strict, ot, auto bandwidth", descriptor="ot", bandwidth="auto"),
        Variant("strict, ot, auto bandwidth, no fallback", descriptor="ot", bandwidth="auto",
                fallback=False),
        Variant("reference, ot, auto bandwidth", mode="reference", descriptor="ot",
                bandwidth="auto"),
        # Beyond the paper's descriptors: p from the (S1, S2) of every benchmark pair (d, m').
        Variant("strict, calibration, auto bandwidth", descriptor="calibration",
                bandwidth="auto"),
        Variant("strict, calibration, auto bandwidth, no fallback", descriptor="calibration",
                bandwidth="auto", fallback=False),
        # No smoother at all: the agreement of a predictor independent of the truth.
        Variant("strict, agreement", descriptor="agreement", bandwidth=float("nan")),
    ]
    for a in alphas:
        variants.append(Variant(f"strict, alpha {a:g}", alpha=a))
        variants.append(Variant(f"strict, ot, auto bandwidth, alpha {a:g}", descriptor="ot",
                                bandwidth="auto", alpha=a))
        # The labelled points also correct S1's task-level shift (llmrouter.shift).
        variants.append(Variant(f"strict, agreement, alpha {a:g}", descriptor="agreement",
                                bandwidth=float("nan"), alpha=a))
    return variants


@dataclass(frozen=True)
class Inputs:
    """What every variant is scored from.

    pairs: the smoother pairs table of both modes (routing.pairs_frame rows: the single
    leave-one-task-out pass, heldout null, and one set per held-out task), as fit_smoother
    writes it in strict mode;
    ot: task -> {dataset -> OT distance}, or None without the ot descriptor;
    vectors: (n_pool, dim) unit-norm embeddings in pool order, or None without alpha > 0.
    The pairs table also holds S1 and S2 of every model on every pair's task, which the
    `calibration` descriptor smooths over.
    """

    pool: Pool
    neighbours: dict[str, knn.Neighbours]
    pairs: pl.DataFrame
    ot: dict[str, dict[str, float]] | None = None
    vectors: np.ndarray | None = None
    # Bandwidths already chosen, by (descriptor, mode, task): variants that differ only in
    # the fallback or alpha share them (the choice does not depend on either).
    chosen: dict = field(default_factory=dict, compare=False)


def all_pairs(pool: Pool, neighbours: dict[str, knn.Neighbours],
              params: RoutingParams) -> pl.DataFrame:
    """The smoother pairs table of both modes: the one pass and one set per held-out task.

    Computed by fit_smoother's own call (routing.pairs_table, bit for bit smoother_pairs), so
    the pairs' arrays (and the rounding of p) are the workflow's.
    """
    return pairs_table(pool, neighbours, params, smoother_heldouts(pool.datasets, "strict"))


def score_variant(inputs: Inputs, variant: Variant, base: RoutingParams, seed: int = 0,
                  grid: tuple[float, ...] = bandwidth.DEFAULT_GRID) -> pl.DataFrame:
    """Scores of every benchmark task under one variant (one seed of its labelled draw).

    Same columns as routing.score_task, plus variant, seed, bandwidth (the one used), and for
    the agreement descriptor kappa and lam (the shrinkage of the labelled shift; null at
    alpha 0). Any bandwidth, kappa or lam choice uses only the tasks the task is scored with,
    never the task itself.
    """
    pool = inputs.pool
    params = replace(base, mode=variant.mode, descriptor=variant.descriptor,
                     bandwidth=variant.bandwidth,
                     fallback_share=base.fallback_share if variant.fallback else 0.0)
    accuracy = pool.task_accuracy()
    frames = []
    for task in pool.datasets:
        pairs = task_pairs(inputs.pairs, pool.models, task, pool.datasets, variant.mode)
        if variant.descriptor in ("calibration", "agreement"):
            chosen = variant.bandwidth  # chosen below, on the calibration pairs / none
        elif variant.bandwidth == "auto":
            dist = bandwidth.pair_distances(pairs, variant.descriptor, inputs.ot)
            chosen, _ = bandwidth.select_bandwidth(dist, pairs.acc, grid)
        else:
            chosen = float(variant.bandwidth)
        rows = pool.rows(task)
        labelled, rest = alpha_mod.labelled_split(len(rows), variant.alpha, seed, task)
        vectors = inputs.vectors[rows] if len(labelled) else None
        if len(labelled) and inputs.vectors is None:
            raise ValueError("alpha > 0 needs the embeddings")
        g, u = alpha_mod.labelled_predictions(inputs.neighbours[task], pool, task, vectors,
                                              labelled, rest, params.k, params.descriptor_k)
        extra = {}
        if variant.descriptor == "calibration":
            p, chosen = _calibration(inputs, task, variant, g, params, grid)
        elif variant.descriptor == "agreement":
            p, extra = _agreement(inputs, task, variant, g, labelled, rest, params)
        else:
            ot_row = inputs.ot.get(task) if inputs.ot is not None else None
            p = smoother_p(u, pairs, variant.descriptor, chosen, ot_row)
        bma_scores, tiebreak = task_baselines(pool, task, variant.mode, accuracy)
        frame = score_task(task, g, u, pairs, bma_scores, tiebreak, pool.models, params,
                           pool.correct[rows[rest]], p)
        frames.append(frame.with_columns(pl.lit(variant.name).alias("variant"),
                                         pl.lit(seed).alias("seed"),
                                         pl.lit(chosen).alias("bandwidth"),
                                         **{k: pl.lit(v, dtype=pl.Float64)
                                            for k, v in extra.items()}))
    return pl.concat(frames)


def _agreement(inputs: Inputs, task: str, variant: Variant, g: np.ndarray,
               labelled: np.ndarray, rest: np.ndarray,
               params: RoutingParams) -> tuple[np.ndarray, dict[str, float | None]]:
    """p of the agreement descriptor and its (kappa, lam): without labelled points plain
    S2 S1 + (1 - S2)(1 - S1); with them S1 is corrected by their shift (llmrouter.shift).

    The shift is measured against the predictor without the labelled points in the pool (the
    one S1 is taken from, on the scored rest); S2 stays that of g, the predictor being scored.
    (kappa, lam) are chosen on the other tasks' simulated draws, once per (mode, alpha, task):
    every seed of the variant shares them.
    """
    if not len(labelled):
        return agreement_p(g, params.threshold, params.k), {"kappa": None, "lam": None}
    pool = inputs.pool
    key = ("shift", variant.mode, variant.alpha, task)
    if key not in inputs.chosen:
        stats = shift.training_stats(pool, inputs.neighbours, params, task, variant.alpha,
                                     strict=variant.mode == "strict")
        inputs.chosen[key] = shift.choose(stats)[:2]
    kappa, lam = inputs.chosen[key]
    g0, _ = task_predictions(inputs.neighbours[task], pool, params)
    correct = pool.correct[pool.rows(task)]
    moved = shift.shrink_shift(shift.raw_shift(g0[labelled], correct[labelled]),
                               len(labelled), kappa, lam)
    p = shift.shifted_p(scores.s1(g0[rest], params.k), scores.s2(g, params.threshold), moved)
    return p, {"kappa": kappa, "lam": lam}


CALIBRATION_GRID = (0.005, 0.01, 0.02, 0.04, 0.08, 0.16)


def _calibration(inputs: Inputs, task: str, variant: Variant, g: np.ndarray,
                 params: RoutingParams, grid: tuple[float, ...]) -> tuple[np.ndarray, float]:
    """p of the calibration descriptor and its bandwidth, from the t-free pairs of the mode."""
    if "s1" not in inputs.pairs.columns:
        raise ValueError("the calibration descriptor needs S1 and S2 in the pairs table")
    held = task if variant.mode == "strict" else None
    rows = pairs_rows(inputs.pairs, held).filter(pl.col("dataset") != task)
    features = rows.select("s1", "s2").to_numpy()
    acc = rows["acc"].to_numpy()
    if variant.bandwidth == "auto":
        key = ("calibration", variant.mode, task)
        if key not in inputs.chosen:
            groups = rows["dataset"].cast(pl.Categorical).to_physical().to_numpy()
            inputs.chosen[key] = select_calibration_bandwidth(features, acc, groups,
                                                              CALIBRATION_GRID)[0]
        chosen = inputs.chosen[key]
    else:
        chosen = float(variant.bandwidth)
    target = np.column_stack([scores.s1(g, params.k), scores.s2(g, params.threshold)])
    return calibration_p(target, features, acc, chosen), chosen


def variant_metrics(scores: pl.DataFrame) -> dict[str, float]:
    """Mean accuracy of each method's picks, the share of the BMA -> Oracle gap S3 closes,
    mean |p - p_true| over tasks and models, and S3 against BMA (task counts)."""
    picked = evaluation.picks(scores)
    means = dict(picked.group_by("method").agg(pl.col("accuracy").mean()).iter_rows())
    gap = means["oracle"] - means["bma"]
    versus = evaluation.s3_versus_bma(picked)
    out = {m: means.get(m, float("nan")) for m in ALL_METHODS}
    out["s3_gap_closed"] = (means["s3"] - means["bma"]) / gap if gap > 0 else float("nan")
    out["p_mae"] = float((scores["p"] - scores["p_true"]).abs().mean())
    out["s3_beats_bma"] = versus["beats"]
    out["s3_ties_bma"] = versus["ties"]
    out["s3_loses_bma"] = versus["loses"]
    out["median_bandwidth"] = float(scores["bandwidth"].median())
    return out


def ablation_table(inputs: Inputs, variants: list[Variant], base: RoutingParams,
                   repeats: int = 3, grid: tuple[float, ...] = bandwidth.DEFAULT_GRID,
                   ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(summary, scores): one summary row per variant, mean over `repeats` seeds where alpha > 0
    (with the sample standard deviation over seeds of S3's accuracy, of the gap it closes and
    of the p error; NaN with one seed), and every score row."""
    rows, all_scores = [], []
    start, passes = time.perf_counter(), sum(len(variant_seeds(v, repeats)) for v in variants)
    for variant in variants:
        seeds = variant_seeds(variant, repeats)
        per_seed = []
        if variant.alpha > 0:
            log.info("%s: %s", variant.name, labelled_counts(inputs.pool, variant.alpha))
        for seed in seeds:
            scored = score_variant(inputs, variant, base, seed, grid)
            all_scores.append(scored)
            per_seed.append(variant_metrics(scored))
            elapsed = time.perf_counter() - start
            done = len(all_scores)
            log.info("%d/%d %s, seed %d: %.1f s so far, about %.0f s left", done, passes,
                     variant.name, seed, elapsed, elapsed / done * (passes - done))
        keys = per_seed[0].keys()
        mean = {k: float(np.mean([m[k] for m in per_seed])) for k in keys}
        rows.append({
            "variant": variant.name, "mode": variant.mode, "descriptor": variant.descriptor,
            "bandwidth": str(variant.bandwidth), "fallback": variant.fallback,
            "alpha": variant.alpha, "repeats": len(per_seed), **mean,
            **{f"{key}_std": seed_spread([m[key] for m in per_seed])
               for key in ("s3", "s3_gap_closed", "p_mae")},
        })
    return pl.DataFrame(rows), pl.concat(all_scores, how="diagonal_relaxed")


def variant_seeds(variant: Variant, repeats: int) -> range:
    """The seeds a variant is scored with: `repeats` where labelled points are drawn, else one."""
    return range(repeats) if variant.alpha > 0 else range(1)


def labelled_counts(pool: Pool, alpha: float) -> str:
    """How many points of each task alpha labels, for the log: a small alpha labels none of a
    small task's points, and its rows then repeat alpha 0 on those tasks."""
    counts = np.array([alpha_mod.n_labelled(int(n), alpha) for n in pool.dataset_sizes()])
    line = (f"{counts.min()} to {counts.max()} labelled points per task (mean "
            f"{counts.mean():.1f})")
    if (counts == 0).any():
        line += f"; none on {int((counts == 0).sum())} of {len(counts)} tasks"
    return line


def seed_spread(values: list[float]) -> float:
    """Sample standard deviation (ddof 1) of a metric over seeds; NaN for a single seed."""
    return float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")


def ablation_notes(n_tasks: int, n_models: int, repeats: int) -> list[str]:
    """What the ablation table's columns mean, printed under it."""
    return [
        f"{n_tasks} tasks x {n_models} models. Columns s1 .. per_instance: "
        "mean accuracy of each method's picks over the tasks (per_instance: argmax_m g_m(x) "
        "per input). s3_gap_closed = (S3 - BMA) / (Oracle - BMA). p_mae = mean over tasks and "
        "models of |p - p_true|, p_true the true accuracy of the thresholded predictor.",
        f"alpha > 0: min(alpha n, 50) labelled points of the task join the pool and leave the "
        f"scored set; every column is the mean over {repeats} seeds (s3_gap_closed: the mean "
        "of each seed's), s3_std, s3_gap_closed_std and p_mae_std their sample standard "
        "deviation (nan: one seed).",
        "auto bandwidth: chosen per task by leave-one-task-out error on the pairs that task is "
        "scored with; median_bandwidth is the median choice. In strict rows the task is out of "
        "every pool those pairs come from; reference rows take the reference's pairs, with the "
        "task in the other tasks' pools.",
    ]


def ablation_markdown(table: pl.DataFrame, title: str, notes: list[str]) -> str:
    """The ablation as a Markdown table (accuracies of the picks, p error, S3 against BMA)."""
    cols = ["variant", "s1", "s2", "s3", "s3_true_p", "bma", "oracle", "per_instance",
            "s3_gap_closed", "p_mae", "s3_beats_bma", "s3_ties_bma", "s3_loses_bma",
            "median_bandwidth", "s3_std", "s3_gap_closed_std", "p_mae_std"]
    lines = [f"# {title}", "", "| " + " | ".join(cols) + " |",
             "|" + "|".join("---" for _ in cols) + "|"]
    counts = {"s3_beats_bma", "s3_ties_bma", "s3_loses_bma"}
    for row in table.select(cols).iter_rows(named=True):
        # Task counts are means over seeds: whole numbers print as such.
        cells = [(f"{v:g}" if name in counts else f"{v:.4f}") if isinstance(v, float) else str(v)
                 for name, v in row.items()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join([*lines, "", *notes, ""])
