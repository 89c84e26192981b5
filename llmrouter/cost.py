"""Cost-aware choice: the cheapest model whose score is within epsilon of the best.

Costs are per model, in whatever unit config gives (parameters, price per token): only their
order and their mean over tasks are used. Sweeping epsilon from 0 upwards trades accuracy for
cost; the mean accuracy and mean cost of the picks over the tasks trace the frontier.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import polars as pl

from llmrouter.artifacts import InputError, atomic_path, commit
from llmrouter.scores import pick

DEFAULT_EPSILONS = (0.0, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2)

# What each frontier method ranks models by, as a column of the scores table
# (oracle: the true accuracy, i.e. the best achievable frontier).
FRONTIER_SCORES = {"s1": "s1", "s2": "s2", "s3": "s3", "oracle": "accuracy"}


def cheapest_within(scores: np.ndarray, cost: np.ndarray, epsilon: float,
                    tiebreak: np.ndarray, names: list[str]) -> int:
    """Index of the cheapest model with score >= max(scores) - epsilon.

    scores, cost, tiebreak: (n_models,). Among equally cheap candidates the usual `pick` rule
    applies (higher score, then higher tiebreak, then smaller name). epsilon = 0 is argmax with
    ties to the cheapest.
    """
    if epsilon < 0:
        raise ValueError(f"epsilon must be >= 0, got {epsilon}")
    # 1e-12: "within epsilon" is inclusive even when max - epsilon rounds up (0.8 - 0.1).
    candidates = np.flatnonzero(scores >= np.max(scores) - epsilon - 1e-12)
    candidates = candidates[cost[candidates] == np.min(cost[candidates])]
    best = pick(scores[candidates], tiebreak[candidates], [names[i] for i in candidates])
    return int(candidates[best])


def check_cost_models(cost: dict[str, float], known: Iterable[str],
                      named: Iterable[str] = ()) -> None:
    """Raise InputError for keys of `cost` (config cost.models) naming no model in `known` or
    `named`.

    known: every model of the run's source with results, kept in the pool or dropped from it
    (results/pool/models.parquet); named: the models the config names (models.include,
    helm.models), whose results may all be missing. A price list may cover models the pool
    leaves out, but a misspelt or foreign name would otherwise be ignored in silence, and with
    it the cost it meant to set.
    """
    names = sorted(set(known) | set(named))
    unknown = sorted(set(cost) - set(names))
    if unknown:
        raise InputError(f"config cost.models: unknown model(s) {unknown}; known (the source's "
                         f"models with results, and those the config names): {names}")


def model_costs(models: list[str], cost: dict[str, float]) -> np.ndarray:
    """(n_models,) costs in `models` order. Raises InputError naming the models without one."""
    missing = [m for m in models if m not in cost]
    if missing:
        raise InputError(f"config cost.models: no cost for {len(missing)} model(s), e.g. "
                         f"{missing[:5]}")
    return np.array([float(cost[m]) for m in models])


def cost_column(cost: dict[str, float]) -> pl.Expr:
    """`cost`: each row's model's cost, null for a model without one."""
    # YAML gives ints and floats side by side (70, 46.7): polars wants one type.
    as_float = {model: float(value) for model, value in cost.items()}
    return pl.col("model").replace_strict(as_float, default=None, return_dtype=pl.Float64) \
        .alias("cost")


def routed_cost(scores: pl.DataFrame, cost: dict[str, float]) -> pl.DataFrame:
    """task, routed_cost: per-instance routing's cost on each task, the routed-share-weighted
    mean of the models' costs; null where a model that gets inputs has no cost.
    scores: rows of routing.score_task with routed_share."""
    routed = scores.with_columns(cost_column(cost)).filter(pl.col("routed_share") > 0)
    return routed.group_by("task", maintain_order=True).agg(
        pl.when(pl.col("cost").is_null().any()).then(None)
        .otherwise((pl.col("routed_share") * pl.col("cost")).sum()).alias("routed_cost"))


def frontier(scores: pl.DataFrame, cost: dict[str, float],
             epsilons: tuple[float, ...] = DEFAULT_EPSILONS,
             methods: tuple[str, ...] = ("s3", "oracle")) -> pl.DataFrame:
    """Accuracy against cost over labelled tasks: one row per (method, epsilon) with the mean
    accuracy and mean cost of the cost-aware picks, plus per-instance routing (epsilon 0: each
    input's argmax, its cost the routed-share-weighted mean). A method here is the cheapest
    model within epsilon of the best of its score: at epsilon 0 the argmax (ties: the
    cheapest), so `s3` without the BMA fallback of evaluation.summary's `s3`.

    scores: rows of routing.score_task (task, model, s1, s2, s3, accuracy, bma_score,
    routed_share); ties break on bma_score (the models' mean per-task accuracy over the tasks
    BMA may use: in strict mode the other tasks, in reference mode all of them).
    Columns: method, epsilon, mean_accuracy, mean_cost.
    """
    scores = scores.filter(pl.col("accuracy").is_not_null())
    rows = []
    per_task = [group.sort("model") for _, group in scores.group_by("task", maintain_order=True)]
    # Before any pick: every model must be priced (model_costs raises, naming the ones without).
    task_costs = [model_costs(group["model"].to_list(), cost) for group in per_task]
    for method in methods:
        column = FRONTIER_SCORES[method]
        for epsilon in epsilons:
            accuracy, spent = [], []
            for group, costs in zip(per_task, task_costs):
                chosen = cheapest_within(group[column].to_numpy(), costs, epsilon,
                                         group["bma_score"].to_numpy(), group["model"].to_list())
                accuracy.append(group["accuracy"][chosen])
                spent.append(costs[chosen])
            rows.append({"method": method, "epsilon": float(epsilon),
                         "mean_accuracy": float(np.mean(accuracy)),
                         "mean_cost": float(np.mean(spent))})
    if "routed_share" in scores.columns and per_task:
        accuracy = [group["per_instance_accuracy"][0] for group in per_task]
        rows.append({"method": "per_instance", "epsilon": 0.0,
                     "mean_accuracy": float(np.mean(accuracy)),
                     "mean_cost": float(routed_cost(scores, cost)["routed_cost"].mean())})
    return pl.DataFrame(rows, schema={"method": pl.String, "epsilon": pl.Float64,
                                      "mean_accuracy": pl.Float64, "mean_cost": pl.Float64})


def plot_frontier(table: pl.DataFrame, path: str, unit: str = "cost") -> None:
    """Mean accuracy against mean cost (PNG, written atomically), one line per method, points
    labelled by epsilon."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for (method,), group in table.group_by("method", maintain_order=True):
        group = group.sort("epsilon")
        marker = "*" if method == "per_instance" else "o"
        ax.plot(group["mean_cost"], group["mean_accuracy"], marker=marker, label=method)
        for eps, x, y in group.select("epsilon", "mean_cost", "mean_accuracy").iter_rows():
            ax.annotate(f"{eps:g}", (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel(f"mean {unit} of the picked model")
    ax.set_ylabel("mean accuracy of the pick")
    ax.set_title("Accuracy against cost (labels: epsilon)")
    ax.legend()
    fig.tight_layout()
    tmp, final = atomic_path(path)
    try:
        fig.savefig(tmp, dpi=120, format="png")
        commit(tmp, final)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
