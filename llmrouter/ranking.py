"""A new task's ranking of the benchmark models, and how close the task is to the benchmark.

Closeness comes from two descriptors:
- the kNN descriptor u(t) (the paper's, what the smoother uses): mean cosine distance of the
  task's inputs to their `descriptor_k` nearest pool inputs. The task is flagged far from the
  benchmark when u(t) exceeds every benchmark task's u(d): p(t, m) is then an extrapolation
  (the smoother's kernel puts all its weight on the farthest benchmark tasks it knows).
- optimal-transport distances between embedding clouds (results/distances/{task}.parquet:
  task, dataset, distance, task_u), when the workflow computes them. The task is also flagged
  when its nearest benchmark task is farther than any benchmark task's nearest other task.
Without OT distances, the nearest benchmark tasks are those supplying most of the task's
nearest pool inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from llmrouter import knn
from llmrouter.cost import cost_column
from llmrouter.routing import pairs_rows
from llmrouter.store import DISTANCE_COLUMNS
from llmrouter.tasks import given_accuracy

# Scores shown in the ranking, in order: column in the scores table -> header.
SCORE_HEADERS = {"s1": "S1", "s2": "S2", "p": "estimated p", "s3": "S3"}
# Human names of the pick_<method> columns score_task writes.
METHOD_NAMES = {"s1": "S1", "s2": "S2", "s3": "S3", "bma": "BMA", "s3_true_p": "S3 (true p)",
                "oracle": "Oracle"}


@dataclass(frozen=True)
class Coverage:
    """How far a task lies from the benchmark.

    u: the task's kNN descriptor; u_min / u_median / u_max: the benchmark tasks' u(d);
    far_by_u: u > u_max; nearest_distance / benchmark_nearest_max: OT distance to the task's
    nearest benchmark task, and the largest such distance among benchmark tasks (None without
    OT distances, or when the task has fewer than `min_points` prompts); far_by_distance:
    nearest_distance > benchmark_nearest_max. n_points: the task's prompts; min_points: the
    smallest cloud the benchmark's distances were computed between (ot_min_points).
    """

    u: float
    u_min: float
    u_median: float
    u_max: float
    far_by_u: bool
    nearest_distance: float | None = None
    benchmark_nearest_max: float | None = None
    far_by_distance: bool = False
    n_points: int | None = None
    min_points: int | None = None

    @property
    def too_few_for_ot(self) -> bool:
        """See the function of that name."""
        return too_few_for_ot(self.n_points, self.min_points)

    @property
    def far(self) -> bool:
        """True when either descriptor puts the task outside the benchmark."""
        return self.far_by_u or self.far_by_distance


def task_u(neighbours: knn.Neighbours, descriptor_k: int) -> float:
    """u(t) of a new task from its neighbour lists (no dataset excluded)."""
    positions = knn.first_allowed(neighbours, descriptor_k)
    return knn.knn_descriptor(np.take_along_axis(neighbours.distance, positions, axis=1))


def neighbour_shares(neighbours: knn.Neighbours, datasets: list[str],
                     descriptor_k: int) -> pl.DataFrame:
    """Per benchmark dataset: share of the task's `descriptor_k` nearest pool inputs that come
    from it, and their mean cosine distance. Columns dataset, share, mean_distance; most
    shared first. datasets: the pool's dataset names, indexed by the lists' dataset codes."""
    positions = knn.first_allowed(neighbours, descriptor_k)
    codes = np.take_along_axis(neighbours.dataset, positions, axis=1).reshape(-1)
    dists = np.take_along_axis(neighbours.distance, positions, axis=1).reshape(-1)
    frame = pl.DataFrame({"code": codes.astype(np.int64), "distance": dists.astype(np.float64)})
    frame = frame.group_by("code").agg(pl.len().alias("count"),
                                       pl.col("distance").mean().alias("mean_distance"))
    names = dict(enumerate(datasets))
    return (
        frame.with_columns(
            pl.col("code").replace_strict(names, return_dtype=pl.String).alias("dataset"),
            (pl.col("count") / len(codes)).alias("share"),
        )
        .sort(["share", "dataset"], descending=[True, False])
        .select("dataset", "share", "mean_distance")
    )


def nearest_by_distance(distances: pl.DataFrame, task: str) -> pl.DataFrame:
    """The task's rows of the OT distance table (task, dataset, distance), nearest first,
    without the task itself. Columns dataset, distance."""
    return (
        distances.filter((pl.col("task") == task) & (pl.col("dataset") != task))
        .select("dataset", pl.col("distance").cast(pl.Float64))
        .sort(["distance", "dataset"])
    )


def too_few_for_ot(n_points: int | None, min_points: int | None) -> bool:
    """Fewer prompts than the smallest benchmark cloud: an OT distance from a few points is
    large by construction (one point's is its mean distance to the other cloud), so it is not
    compared with the benchmark's. False where either count is unknown."""
    return n_points is not None and min_points is not None and n_points < min_points


def ot_min_points(dataset_sizes: list[int], max_points: int) -> int:
    """The smallest cloud between which the benchmark's OT distances were computed: each task
    takes min(its size, distances.max_points) points."""
    return min(min(int(n), max_points) for n in dataset_sizes)


def coverage(u: float, benchmark_u: np.ndarray, distances: pl.DataFrame | None = None,
             task: str | None = None, n_points: int | None = None,
             min_points: int | None = None) -> Coverage:
    """Where the task's descriptors fall among the benchmark tasks'.

    benchmark_u: (n_datasets,) u(d) of the benchmark tasks (the smoother's pairs).
    distances: the OT table with rows for benchmark tasks and, for `task`, the task's rows.
    n_points, min_points: see Coverage; with fewer prompts than min_points the OT distances
    are not compared.
    """
    benchmark_u = np.asarray(benchmark_u, dtype=np.float64)
    if benchmark_u.size == 0:
        raise ValueError("no benchmark descriptors to compare with")
    nearest = limit = None
    if distances is not None and task is not None and not too_few_for_ot(n_points, min_points):
        mine = nearest_by_distance(distances, task)
        others = distances.filter((pl.col("task") != task) & (pl.col("task") != pl.col("dataset"))
                                  & (pl.col("dataset") != task))
        if mine.height and others.height:
            nearest = float(mine["distance"].min())
            limit = float(others.group_by("task").agg(pl.col("distance").min())["distance"].max())
    return Coverage(
        u=float(u),
        u_min=float(benchmark_u.min()),
        u_median=float(np.median(benchmark_u)),
        u_max=float(benchmark_u.max()),
        far_by_u=bool(u > benchmark_u.max()),
        nearest_distance=nearest,
        benchmark_nearest_max=limit,
        far_by_distance=bool(nearest is not None and limit is not None and nearest > limit),
        n_points=n_points,
        min_points=min_points,
    )


def ranking_table(scores: pl.DataFrame, costs: dict[str, float] | None = None,
                  given_accuracy: dict[str, float] | None = None) -> pl.DataFrame:
    """One row per model, best S3 first (ties: S1, then name): rank, model, s1, s2, p, s3,
    cost (null when unknown), accuracy (from the task file's correctness columns, else null),
    picks (comma-separated names of the methods that pick the model, '' for none)."""
    methods = [c.removeprefix("pick_") for c in scores.columns if c.startswith("pick_")]
    picked = [
        pl.when(pl.col(f"pick_{m}")).then(pl.lit(METHOD_NAMES.get(m, m))).otherwise(None)
        for m in methods
    ]
    costs = costs or {}
    given = given_accuracy or {}
    table = (
        scores.with_columns(
            pl.concat_str(picked, separator=", ", ignore_nulls=True).fill_null("").alias("picks")
            if picked else pl.lit("").alias("picks"),
            cost_column(costs),
            pl.col("model").replace_strict(given, default=None, return_dtype=pl.Float64)
            .alias("accuracy"),
        )
        .sort(["s3", "s1", "model"], descending=[True, True, False])
        .with_row_index("rank", offset=1)
    )
    return table.select("rank", "model", *SCORE_HEADERS, "cost", "accuracy", "picks")


def _number(value: float | None, digits: int = 3) -> str:
    """A table cell: the value to `digits` places, empty for null or NaN."""
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) \
        else f"{value:.{digits}f}"


def _cost(value: float | None) -> str:
    """A cost cell: 4 decimals, or 3 significant digits for a price per token (2e-06)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return f"{value:.4f}" if value == 0 or abs(value) >= 0.01 else f"{value:.3g}"


def pick_of(table: pl.DataFrame, method: str) -> str | None:
    """The model that `method` (a display name of the picks column) picks, None if none."""
    rows = table.filter(pl.col("picks").str.contains(rf"(^|, ){method}(,|$)"))
    return rows["model"][0] if rows.height else None


def ranking_markdown(
    task: str,
    table: pl.DataFrame,
    n_prompts: int,
    cover: Coverage,
    shares: pl.DataFrame,
    nearest: pl.DataFrame | None = None,
    descriptor_k: int = 19,
    top: int | None = None,
    unknown: list[str] | None = None,
    p_from_ot: bool = False,
    fallback_share: float = 0.6,
    draws: int = 1000,
    cut: int = 0,
    max_seq_length: int | None = None,
) -> str:
    """The ranking as a Markdown page: the pick, the closeness to the benchmark (with a plain
    warning when far), and the table from `ranking_table` (first `top` rows, or all).
    unknown: the task file's correctness columns that name no benchmark model, said at the top
    (a misspelt model id would otherwise just leave that model's true accuracy blank).
    p_from_ot: p came from the OT distances (descriptor `ot`), said where they are too few.
    cut: how many prompts are longer than `max_seq_length` tokens, said at the top (the model
    embeds their first tokens alone, silently)."""
    s3_pick = pick_of(table, "S3")
    lines = [f"# Which model for `{task}`?", ""]
    lines.append(f"{n_prompts} prompt{'s' if n_prompts != 1 else ''} scored against "
                 f"{table.height} benchmark models.")
    lines.append("")
    if cut:
        lines += [f"> **{cut} of the {n_prompts} prompts are longer than {max_seq_length} "
                  "tokens** (embedding.max_seq_length): only their first "
                  f"{max_seq_length} tokens were embedded, so their scores rest on those.", ""]
    if unknown:
        names = ", ".join(f"`{c}`" for c in unknown)
        lines += [f"> **Ignored correctness column(s) of the task file: {names}.** They name "
                  "no model scored here (a misspelt id, or a model the benchmark pool lacks), "
                  "so they give no true accuracy; a column must be named exactly as a model "
                  "of the ranking below.", ""]
    if s3_pick is not None:
        row = table.filter(pl.col("model") == s3_pick).row(0, named=True)
        lines.append(f"**Pick: `{s3_pick}`** (S3 = {row['s3']:.3f}: its expected accuracy on "
                     f"this task, from the smoother's p = {row['p']:.3f}).")
    others = []
    for method in ("S1", "S2", "BMA"):
        model = pick_of(table, method)
        if model is not None:
            others.append(f"{method}: `{model}`")
    if others:
        lines += ["", "Other picks: " + "; ".join(others) + "."]
    lines += ["", "## How close is this task to the benchmark?", ""]
    if cover.far:
        lines.append("> **Warning: this task is far from everything the benchmark covers.** "
                     "Its scores are extrapolations; check the pick on a few labelled prompts.")
        lines.append("")
    lines.append(f"- u(t) = {cover.u:.4f}: mean cosine distance of its prompts to their "
                 f"{descriptor_k} nearest benchmark inputs. Benchmark tasks: u(d) from "
                 f"{cover.u_min:.4f} to {cover.u_max:.4f} (median {cover.u_median:.4f})"
                 + (", so this task is farther than all of them." if cover.far_by_u else "."))
    if cover.nearest_distance is not None:
        lines.append(f"- Optimal-transport distance to the nearest benchmark task: "
                     f"{cover.nearest_distance:.4f}; the largest such distance among benchmark "
                     f"tasks is {cover.benchmark_nearest_max:.4f}"
                     + (", so this task is farther." if cover.far_by_distance else "."))
    if cover.too_few_for_ot:
        prompts = "1 prompt is" if cover.n_points == 1 else f"{cover.n_points} prompts are"
        lines.append(f"- No optimal-transport check: {prompts} fewer than "
                     f"the {cover.min_points} points of the smallest benchmark task it would "
                     "be compared with, and the OT distance of a few points is large by "
                     "construction. u(t) above is the check."
                     + (" **The estimated p below comes from these distances** (`smoother."
                        "descriptor: ot`), so it is less reliable here; `knn` and `agreement` "
                        "do not use them." if p_from_ot else ""))
    lines.append("")
    if nearest is not None and nearest.height and not cover.too_few_for_ot:
        lines += ["Nearest benchmark tasks (optimal-transport distance between embedding "
                  "clouds):", "", "| dataset | distance |", "|---|---|"]
        lines += [f"| {d} | {x:.4f} |" for d, x in nearest.head(5).iter_rows()]
        lines.append("")
    lines += [f"Benchmark tasks supplying the task's {descriptor_k} nearest inputs:", "",
              "| dataset | share of nearest inputs | mean cosine distance |", "|---|---|---|"]
    lines += [f"| {d} | {100 * s:.1f}% | {x:.4f} |" for d, s, x in shares.head(5).iter_rows()]
    lines += ["", "## Ranking (best S3 first)", ""]
    has_accuracy = table["accuracy"].is_not_null().any()
    has_cost = table["cost"].is_not_null().any()
    headers = ["rank", "model", *SCORE_HEADERS.values()] + (["cost"] if has_cost else [])
    headers += ["true accuracy"] if has_accuracy else []
    headers += ["pick"]
    lines += ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    shown = table if top is None else table.head(top)
    for row in shown.iter_rows(named=True):
        cells = [str(row["rank"]), f"`{row['model']}`",
                 *(_number(row[c]) for c in SCORE_HEADERS)]
        cells += [_cost(row["cost"])] if has_cost else []
        cells += [_number(row["accuracy"])] if has_accuracy else []
        cells += [row["picks"]]
        lines.append("| " + " | ".join(cells) + " |")
    if top is not None and table.height > top:
        lines.append(f"\n({table.height - top} more models in the Parquet file.)")
    lines += [
        "",
        "S1: mean predicted correctness (kNN over the benchmark); S2: share of prompts predicted "
        "correct; estimated p: how often that prediction is right on a task this far from the "
        "benchmark; S3 = p S2 + (1 - p)(1 - S2). " + fallback_sentence(fallback_share, draws)
        + ("" if has_cost else " No per-model costs are configured (config `cost.models`)."),
        "",
    ]
    return "\n".join(lines)


def fallback_sentence(fallback_share: float, draws: int) -> str:
    """What the page says of the S3 pick's fallback to BMA, as configured (selection.*)."""
    if fallback_share <= 0:
        return "The S3 pick is kept whatever BMA does (selection.fallback_share 0: no fallback)."
    return (f"The S3 pick falls back to BMA (the best model on average over the benchmark) "
            f"unless it beats BMA in at least {100 * fallback_share:g}% of {draws} simulated "
            "draws.")


@dataclass(frozen=True)
class NewTaskRanking:
    """A new task's ranking: `ranking_table`'s table, its Markdown page, where the task lies
    (coverage), and the task file's correctness columns that name no benchmark model
    (unknown, sorted; they are left out of the accuracy column)."""

    table: pl.DataFrame
    markdown: str
    coverage: Coverage
    unknown: list[str]


def rank_new_task(
    task: str,
    scores: pl.DataFrame,
    neighbours: knn.Neighbours,
    pairs: pl.DataFrame,
    datasets: list[str],
    prompts: pl.DataFrame,
    task_distances: pl.DataFrame,
    distance_matrix: pl.DataFrame,
    descriptor_k: int,
    costs: dict[str, float] | None = None,
    top: int | None = None,
    min_points: int | None = None,
    descriptor: str = "knn",
    fallback_share: float = 0.6,
    draws: int = 1000,
    cut: int = 0,
    max_seq_length: int | None = None,
) -> NewTaskRanking:
    """Rank the benchmark models on a new task and say how close it is to the benchmark.

    scores: the task's scores (score_task's table); neighbours: its prompts' neighbour lists;
    pairs: the smoother's pairs (heldout, dataset, u, ...), whose leave-one-task-out pass
    (heldout null) gives the benchmark tasks' u(d); datasets: the pool's dataset names;
    prompts: the task file (its correctness columns give the true accuracy);
    task_distances / distance_matrix: the task's row and the benchmark's matrix of OT
    distances (task, dataset, distance); costs, top: as in ranking_table / ranking_markdown;
    min_points: ot_min_points of the benchmark (None: the OT distances are always compared);
    descriptor: the smoother's, so the page can say when p rests on too few points' distances.
    fallback_share, draws: the S3 pick's fallback to BMA (selection.*), as the page states it.
    cut, max_seq_length: how many prompts the embedding cut, and where (ranking_markdown).
    The page names the correctness columns that match no benchmark model (`unknown`).
    """
    benchmark_u = pairs_rows(pairs, None).unique("dataset")["u"].to_numpy()
    row = task_distances.select(DISTANCE_COLUMNS)
    matrix = distance_matrix.select(DISTANCE_COLUMNS)
    u = task_u(neighbours, descriptor_k)
    cover = coverage(u, benchmark_u, pl.concat([matrix, row]), task, prompts.height, min_points)
    given = given_accuracy(prompts)
    unknown = sorted(set(given) - set(scores["model"].to_list()))
    table = ranking_table(scores, costs, given)
    markdown = ranking_markdown(task, table, prompts.height, cover,
                                neighbour_shares(neighbours, datasets, descriptor_k),
                                nearest_by_distance(row, task), descriptor_k, top, unknown,
                                descriptor == "ot", fallback_share, draws, cut,
                                max_seq_length)
    return NewTaskRanking(table=table, markdown=markdown, coverage=cover, unknown=unknown)
