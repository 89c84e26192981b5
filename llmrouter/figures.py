"""The report's figures (matplotlib, Agg backend) and its summary table as HTML.

Each function takes the workflow's tables and returns a matplotlib Figure (or HTML text);
`save_png` writes it atomically. Sizes grow with the number of rows so labels stay readable.
"""

from __future__ import annotations

import html
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: jobs run without a display (clusters, CI)

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from llmrouter import smoother  # noqa: E402
from llmrouter.artifacts import atomic_path, commit  # noqa: E402

# How each method is drawn in the picks figure: label, marker, colour, size.
METHOD_STYLE = {
    "oracle": ("Oracle (best on the task)", "|", "black", 300),
    "s3": ("S3", "o", "tab:red", 36),
    "s3_true_p": ("S3 with the true p", "x", "tab:purple", 30),
    "bma": ("BMA (best on average)", "s", "tab:gray", 26),
    "s1": ("S1", "^", "tab:blue", 22),
    "s2": ("S2", "v", "tab:green", 22),
    "per_instance": ("per-instance routing", "D", "tab:orange", 18),
}


def save_png(figure: Figure, path: str | Path, dpi: int = 120) -> None:
    """Write a figure as PNG atomically and close it."""
    tmp, final = atomic_path(path)
    try:
        figure.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
        commit(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
        plt.close(figure)


def picks_figure(picks: pl.DataFrame) -> Figure:
    """True accuracy of each method's pick per held-out task, against the oracle.

    picks: task, method, model, accuracy (results/report/picks.parquet). Tasks are sorted by
    the oracle's accuracy; one row per task.
    """
    picks = picks.filter(pl.col("accuracy").is_not_null())
    oracle = picks.filter(pl.col("method") == "oracle").sort(["accuracy", "task"])
    tasks = oracle["task"].to_list() or sorted(picks["task"].unique().to_list())
    position = {t: i for i, t in enumerate(tasks)}
    figure, axis = plt.subplots(figsize=(8, 1.5 + 0.3 * len(tasks)))
    drawn = [m for m in METHOD_STYLE if m != "oracle" and m in set(picks["method"].to_list())]
    # Methods side by side within a task's row, so equal picks do not hide each other.
    offsets = dict(zip(drawn, np.linspace(-0.3, 0.3, len(drawn)) if len(drawn) > 1 else [0.0]))
    offsets["oracle"] = 0.0
    for method, (label, marker, colour, size) in METHOD_STYLE.items():
        rows = picks.filter(pl.col("method") == method)
        if rows.height == 0:
            continue
        y = [position[t] + offsets[method] for t in rows["task"]]
        axis.scatter(rows["accuracy"], y, marker=marker, color=colour, s=size, label=label,
                     zorder=3 if method == "s3" else 2)
    axis.set_yticks(range(len(tasks)), tasks, fontsize=7)
    axis.set_ylim(-0.7, len(tasks) - 0.3)
    axis.set_xlabel("true accuracy of the picked model on the held-out task")
    axis.grid(axis="x", alpha=0.3)
    means = picks.group_by("method").agg(pl.col("accuracy").mean()).sort("method")
    summary = ", ".join(f"{METHOD_STYLE.get(m, (m,))[0].split(' (')[0]} {a:.3f}"
                        for m, a in means.iter_rows() if m in ("s3", "bma", "oracle"))
    axis.set_title(f"Picks against the oracle on {len(tasks)} held-out tasks\n(means: {summary})",
                   fontsize=10)
    axis.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7)
    return figure


def top_models(pool_accuracy: np.ndarray, models: list[str], n: int = 8) -> list[str]:
    """The n models with the best mean per-task accuracy (ties: name).
    pool_accuracy: (n_datasets, n_models)."""
    mean = np.asarray(pool_accuracy, dtype=np.float64).mean(axis=0)
    order = sorted(range(len(models)), key=lambda i: (-mean[i], models[i]))
    return [models[i] for i in order[:n]]


def fitted_knn_bandwidth(fitted: pl.DataFrame) -> float | None:
    """The benchmark's fitted knn bandwidth from the fitted bandwidths table (task,
    descriptor, bandwidth): its row with task null and descriptor knn, None without one."""
    fitted = fitted.filter(pl.col("task").is_null() & (pl.col("descriptor") == "knn"))
    return fitted["bandwidth"].item() if fitted.height else None


def u_curve_bandwidth(fitted_knn: float | None, descriptor: str,
                      configured: float | str | None) -> float:
    """The sigma of the smoother figure's p-against-u curves: the fitted knn bandwidth, else
    the configured one when it is a knn sigma, else the paper's (an `ot` bandwidth is on the
    scale of OT distances, not of u)."""
    if fitted_knn is not None:
        return float(fitted_knn)
    if descriptor == "knn" and isinstance(configured, (int, float)) \
            and not isinstance(configured, bool):
        return float(configured)
    return smoother.PAPER_BANDWIDTH


def smoother_figure(pairs: pl.DataFrame, models: list[str], bandwidth: float,
                    marks: dict[str, float] | None = None) -> Figure:
    """The smoother's fitted curve p(u) = sum_d w_d(u) acc(d, m) per model, with its points.

    pairs: dataset, model, u, acc (one leave-one-task-out pass: heldout null);
    models: the models drawn (one panel each); marks: task name -> u(t) drawn as dashed lines
    (new tasks).
    """
    columns = 4 if len(models) > 4 else max(1, len(models))
    rows = int(np.ceil(len(models) / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.8 * rows),
                                sharex=True, sharey=True, squeeze=False)
    u_all = pairs["u"].to_numpy()
    span = max(float(u_all.max() - u_all.min()), 1e-6)
    extra = list((marks or {}).values())
    lo = min([float(u_all.min())] + extra) - 0.05 * span
    hi = max([float(u_all.max())] + extra) + 0.05 * span
    grid = np.linspace(lo, hi, 200)
    for axis, model in zip(axes.ravel(), models):
        mine = pairs.filter(pl.col("model") == model).sort("dataset")
        u, acc = mine["u"].to_numpy(), mine["acc"].to_numpy()
        curve = [float(smoother.smooth(x, u, acc[:, None], bandwidth)[0]) for x in grid]
        axis.scatter(u, acc, s=10, color="tab:blue", alpha=0.7, label="benchmark task (u(d), acc)")
        axis.plot(grid, curve, color="tab:red", label=f"smoother (sigma = {bandwidth:g})")
        for name, value in (marks or {}).items():
            axis.axvline(value, color="tab:green", linestyle="--", linewidth=1)
            axis.text(value, 0.02, f" {name}", rotation=90, fontsize=6, color="tab:green",
                      va="bottom", transform=axis.get_xaxis_transform())
        axis.set_title(model, fontsize=8)
        axis.grid(alpha=0.3)
    for axis in axes.ravel()[len(models):]:
        axis.set_visible(False)
    for axis in axes[-1]:
        axis.set_xlabel("u: mean distance to nearest benchmark inputs", fontsize=8)
    for axis in axes[:, 0]:
        axis.set_ylabel("accuracy of the\nthresholded predictor", fontsize=8)
    axes[0, 0].legend(fontsize=6, loc="lower left")
    figure.suptitle("Confidence smoother: estimated p against the task descriptor u", fontsize=10)
    figure.tight_layout()
    return figure


def distance_order(matrix: np.ndarray) -> np.ndarray:
    """Row/column order grouping similar tasks (average-linkage leaves); matrix (n, n)."""
    from scipy.cluster.hierarchy import leaves_list, linkage
    from scipy.spatial.distance import squareform

    if len(matrix) < 3:
        return np.arange(len(matrix))
    square = (matrix + matrix.T) / 2.0
    np.fill_diagonal(square, 0.0)
    return leaves_list(linkage(squareform(np.maximum(square, 0.0), checks=False), "average"))


def distance_figure(distances: pl.DataFrame) -> Figure:
    """Heatmap of task distances: rows task, columns benchmark dataset, clustered order.

    distances: task, dataset, distance (results/distances.parquet, OT between embedding clouds).
    Tasks that are not benchmark datasets (new tasks) are added as rows at the bottom.
    """
    datasets = sorted(distances["dataset"].unique().to_list())
    wide = distances.pivot(on="dataset", index="task", values="distance")
    benchmark = wide.filter(pl.col("task").is_in(datasets))
    order = [datasets[i] for i in distance_order(
        benchmark.sort("task").select(datasets).to_numpy().astype(np.float64))] \
        if benchmark.height == len(datasets) else datasets
    extra = sorted(set(wide["task"].to_list()) - set(datasets))
    rows = [t for t in order if t in set(benchmark["task"].to_list())] + extra
    lookup = {t: i for i, t in enumerate(wide["task"].to_list())}
    values = wide.select(order).to_numpy().astype(np.float64)[[lookup[t] for t in rows]]
    # A task's distance to itself (0) would stretch the colour scale over the interesting range.
    for i, name in enumerate(rows):
        if name in order:
            values[i, order.index(name)] = np.nan
    size = 3 + 0.16 * max(len(order), len(rows))
    figure, axis = plt.subplots(figsize=(size + 1.5, size * len(rows) / max(len(order), 1) + 1))
    colours = matplotlib.colormaps["viridis"].with_extremes(bad="lightgrey")
    image = axis.imshow(np.ma.masked_invalid(values), cmap=colours, aspect="auto")
    fontsize = 8 if len(order) <= 20 else 5
    axis.set_xticks(range(len(order)), order, rotation=90, fontsize=fontsize)
    axis.set_yticks(range(len(rows)), rows, fontsize=fontsize)
    if extra:
        axis.axhline(len(rows) - len(extra) - 0.5, color="white", linewidth=2)
    figure.colorbar(image, ax=axis, shrink=0.6, label="optimal-transport distance")
    axis.set_title("Task distances (clustered; new tasks below the white line; grey: self)"
                   if extra else "Task distances between benchmark tasks (clustered; grey: self)",
                   fontsize=10)
    return figure


def ranking_figure(scores: pl.DataFrame, top: int = 20) -> Figure:
    """A new task's models by S3 (bars) with S1 and p (markers), the S3 pick highlighted.

    scores: one task's scores (results/scores/{task}.parquet); the `top` best by S3 shown, and
    the pick in the last place where it falls back to a model below them.
    """
    task = scores["task"][0]
    ranked = scores.sort(["s3", "s1", "model"], descending=[True, True, False])
    rows = ranked.head(top)
    shown = f"top {rows.height} models by S3"
    if "pick_s3" in scores.columns and not rows["pick_s3"].any() and scores["pick_s3"].any():
        rows = pl.concat([ranked.head(top - 1), ranked.filter(pl.col("pick_s3"))])
        shown = f"top {top - 1} models by S3 and the pick"
    rows = rows.reverse()
    y = np.arange(rows.height)
    picked = rows["pick_s3"].to_numpy() if "pick_s3" in rows.columns else np.zeros(rows.height,
                                                                                      bool)
    figure, axis = plt.subplots(figsize=(8, 1.2 + 0.3 * rows.height))
    axis.barh(y, rows["s3"], color=np.where(picked, "tab:red", "tab:blue"), alpha=0.8,
              label="S3 (expected accuracy)")
    axis.scatter(rows["s1"], y, color="black", marker="|", s=80, label="S1", zorder=3)
    axis.scatter(rows["p"], y, color="tab:green", marker="x", s=20, label="estimated p", zorder=3)
    axis.set_yticks(y, rows["model"].to_list(), fontsize=7)
    axis.set_xlim(0, 1)
    axis.set_xlabel("score")
    axis.grid(axis="x", alpha=0.3)
    axis.set_title(f"New task {task}: {shown} (red: the pick)", fontsize=10)
    axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return figure


def summary_html(summary: pl.DataFrame, title: str, note: str = "") -> str:
    """The evaluation summary (Table 1) as a small standalone HTML page."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in summary.columns)
    body = []
    for row in summary.iter_rows():
        cells = "".join(
            f"<td>{'' if v is None else (f'{v:.4f}' if isinstance(v, float) else html.escape(str(v)))}</td>"
            for v in row
        )
        body.append(f"<tr>{cells}</tr>")
    style = ("body{font-family:sans-serif;font-size:14px}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
             "th{background:#eee}td:first-child{text-align:left;font-weight:bold}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title><style>{style}</style></head><body><h3>{html.escape(title)}</h3>"
            f"<table><tr>{head}</tr>{''.join(body)}</table><p>{html.escape(note)}</p>"
            "</body></html>\n")
