"""Leave-one-task-out evaluation: what each method picks and how good the picks are (Table 1)."""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy import stats

from llmrouter import scores as scores_mod
from llmrouter.cost import cost_column, model_costs, routed_cost
from llmrouter.routing import ALL_METHODS, METHODS

# The score each method ranks models by, as an expression over a scores table.
METHOD_SCORE = {
    "s1": pl.col("s1"),
    "s2": pl.col("s2"),
    "s3": pl.col("s3"),
    "s3_true_p": scores_mod.s3(pl.col("s2"), pl.col("p_true")),
    "bma": pl.col("bma_score"),
    "oracle": pl.col("accuracy"),
}


def picks(scores: pl.DataFrame) -> pl.DataFrame:
    """task, method, model, accuracy: the model each method picks on each task.

    Per-instance routing picks a model per input, not per task: its row has model
    PER_INSTANCE_MODEL and the accuracy of the routed inputs.
    """
    frames = [
        scores.filter(pl.col(f"pick_{m}")).select(
            "task", pl.lit(m).alias("method"), "model", "accuracy"
        )
        for m in METHODS
        if f"pick_{m}" in scores.columns
    ]
    if "per_instance_accuracy" in scores.columns:
        frames.append(scores.group_by("task", maintain_order=True).agg(
            pl.lit("per_instance").alias("method"), pl.lit(PER_INSTANCE_MODEL).alias("model"),
            pl.col("per_instance_accuracy").first().alias("accuracy")))
    return pl.concat(frames).sort("task", "method")


# The `model` of per-instance routing's rows in picks: it is a mix of models, not one.
PER_INSTANCE_MODEL = "per-instance"


def _correlations(scores: pl.DataFrame, method: str) -> tuple[float, float]:
    """Mean over tasks of Pearson and Spearman correlation of a method's scores with accuracy."""
    pearson, spearman = [], []
    if method not in METHOD_SCORE:
        return float("nan"), float("nan")
    for (_,), group in scores.group_by("task", maintain_order=True):
        x = group.select(METHOD_SCORE[method]).to_series().to_numpy()
        y = group["accuracy"].to_numpy()
        if np.ptp(x) == 0 or np.ptp(y) == 0:
            continue
        pearson.append(stats.pearsonr(x, y)[0])
        spearman.append(stats.spearmanr(x, y)[0])
    mean = lambda v: float(np.mean(v)) if v else float("nan")  # noqa: E731
    return mean(pearson), mean(spearman)


# Given, not inferred: a column null in every row (mean_cost without costs) would be of polars'
# Null type, and summaries of runs with and without costs would not concatenate.
SUMMARY_SCHEMA = {"method": pl.String, "tasks": pl.Int64, "mean_accuracy": pl.Float64,
                  "ratio_to_oracle": pl.Float64, "pearson": pl.Float64, "spearman": pl.Float64,
                  "pick_is_bma_pct": pl.Float64, "mean_rank": pl.Float64,
                  "mean_cost": pl.Float64}


def summary(scores: pl.DataFrame, cost: dict[str, float] | None = None) -> pl.DataFrame:
    """Per method: mean accuracy, ratio to oracle, mean Pearson / Spearman of its scores with
    the true accuracies, % of tasks where the pick is BMA's, mean rank of the pick (1 = best),
    and mean cost of the picked model (null without costs; per-instance routing's is the
    routed-share-weighted cost, as in cost.frontier).
    Only labelled tasks count. With costs, every model of those tasks needs one (InputError
    naming the models without one, as in cost.frontier).
    """
    scores = scores.filter(pl.col("accuracy").is_not_null())
    ranked = scores.with_columns(
        pl.col("accuracy").rank(method="min", descending=True).over("task").alias("rank")
    )
    chosen = picks(ranked.drop("accuracy").join(
        scores.select("task", "model", "accuracy"), on=["task", "model"]))
    # Left join: per-instance rows have no single model, hence no rank.
    chosen = chosen.join(ranked.select("task", "model", "rank"), on=["task", "model"],
                         how="left")
    bma = chosen.filter(pl.col("method") == "bma").select("task", pl.col("model").alias("bma"))
    # Left join: a task without a BMA pick still counts in every other column.
    chosen = chosen.join(bma, on="task", how="left")
    if cost:
        # A pick without a cost would drop out of polars' mean: mean_cost would then cover
        # fewer tasks than the `tasks` column says. model_costs raises, naming those models.
        model_costs(scores["model"].unique().sort().to_list(), cost)
        chosen = chosen.with_columns(cost_column(cost))
        if "routed_share" in scores.columns:
            chosen = chosen.join(routed_cost(scores, cost), on="task", how="left").with_columns(
                pl.when(pl.col("method") == "per_instance").then("routed_cost")
                .otherwise("cost").alias("cost"))
    else:
        chosen = chosen.with_columns(pl.lit(None, dtype=pl.Float64).alias("cost"))
    oracle_mean = chosen.filter(pl.col("method") == "oracle")["accuracy"].mean()
    rows = []
    for method in ALL_METHODS:
        mine = chosen.filter(pl.col("method") == method)
        if mine.height == 0:
            continue
        pearson, spearman = _correlations(scores, method)
        rows.append(
            {
                "method": method,
                "tasks": mine.height,
                "mean_accuracy": mine["accuracy"].mean(),
                # null, not a division error, where the oracle gets nothing right
                "ratio_to_oracle": mine["accuracy"].mean() / oracle_mean if oracle_mean
                else None,
                "pearson": pearson,
                "spearman": spearman,
                # per-instance routing picks no single model: neither BMA's nor another
                "pick_is_bma_pct": None if method == "per_instance"
                else 100.0 * (mine["model"] == mine["bma"]).mean(),
                "mean_rank": mine["rank"].cast(pl.Float64).mean(),
                "mean_cost": mine["cost"].mean(),
            }
        )
    return pl.DataFrame(rows, schema=SUMMARY_SCHEMA)


def s3_versus_bma(picked: pl.DataFrame) -> dict[str, int]:
    """Counts of tasks where S3's pick is more / equally / less accurate than BMA's."""
    wide = picked.pivot(on="method", index="task", values="accuracy")
    diff = wide["s3"] - wide["bma"]
    return {"beats": int((diff > 0).sum()), "ties": int((diff == 0).sum()),
            "loses": int((diff < 0).sum())}


def summary_title(mode: str) -> str:
    """The title of the summary table (Markdown and HTML)."""
    return f"Leave-one-task-out evaluation ({mode} mode)"


def versus_sentence(versus: dict[str, int]) -> str:
    """The sentence under the summary table: S3's picks against BMA's, task by task."""
    return (f"S3 against BMA over {sum(versus.values())} tasks: beats {versus['beats']}, "
            f"ties {versus['ties']}, loses {versus['loses']}.")


def summary_markdown(table: pl.DataFrame, versus: dict[str, int], title: str) -> str:
    """The summary as a Markdown table, like the paper's Table 1."""
    cols = table.columns
    lines = [f"# {title}", "", "| " + " | ".join(cols) + " |",
             "|" + "|".join("---" for _ in cols) + "|"]
    for row in table.iter_rows():
        cells = [f"{v:.4f}" if isinstance(v, float) else ("" if v is None else str(v))
                 for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", versus_sentence(versus), ""]
    return "\n".join(lines)
