"""The report's figures (llmrouter/figures.py) on small hand-made tables: PNGs that open."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from matplotlib.image import imread

from llmrouter import figures
from llmrouter.routing import pairs_rows


def check_png(path) -> np.ndarray:
    image = imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert image.std() > 0  # not a blank canvas
    return image


def test_picks_figure(tmp_path):
    rows = []
    for t, task in enumerate(["a", "b", "c"]):
        for method, acc in [("oracle", 0.9), ("s3", 0.8), ("bma", 0.7), ("s1", 0.6),
                            ("s2", 0.5), ("s3_true_p", 0.85), ("per_instance", 0.75)]:
            rows.append({"task": task, "method": method, "model": "m", "accuracy": acc - 0.1 * t})
    figure = figures.picks_figure(pl.DataFrame(rows))
    assert [t.get_text() for t in figure.axes[0].get_yticklabels()] == ["c", "b", "a"]
    assert "S3 0.700" in figure.axes[0].get_title()
    figures.save_png(figure, tmp_path / "picks.png")
    check_png(tmp_path / "picks.png")


def test_top_models_and_smoother_figure(tmp_path):
    accuracy = np.array([[0.5, 0.9, 0.7], [0.5, 0.7, 0.7]])
    assert figures.top_models(accuracy, ["x", "y", "z"], 2) == ["y", "z"]
    pairs = pl.DataFrame({
        "dataset": ["d1", "d2", "d3"] * 2,
        "model": ["y"] * 3 + ["z"] * 3,
        "u": [0.6, 0.7, 0.8] * 2,
        "acc": [0.9, 0.8, 0.6, 0.7, 0.7, 0.5],
    })
    figure = figures.smoother_figure(pairs, ["y", "z"], 0.09, marks={"algebra": 0.85})
    visible = [a for a in figure.axes if a.get_visible()]
    assert [a.get_title() for a in visible] == ["y", "z"]
    # The curve is the smoother itself: at u = 0.6 it equals smooth(0.6, ...).
    line = visible[0].get_lines()[0]
    x, y = line.get_data()
    from llmrouter.smoother import smooth
    i = int(np.argmin(np.abs(x - 0.6)))
    assert y[i] == pytest.approx(smooth(x[i], np.array([0.6, 0.7, 0.8]),
                                        np.array([[0.9], [0.8], [0.6]]), 0.09)[0])
    assert x.max() > 0.85  # the new task's mark is inside the drawn range
    figures.save_png(figure, tmp_path / "smoother.png")
    check_png(tmp_path / "smoother.png")


def test_distance_figure_orders_benchmark_then_new_tasks(tmp_path):
    names = ["a", "b", "c", "d"]
    # Close pairs (a, c) and (b, d): alphabetical order would split both.
    points = {"a": 0.0, "b": 1.0, "c": 0.1, "d": 1.1}
    rows = [{"task": t, "dataset": d, "distance": abs(points[t] - points[d])}
            for t in names for d in names]
    rows += [{"task": "new", "dataset": d, "distance": 2.0 - points[d]} for d in names]
    figure = figures.distance_figure(pl.DataFrame(rows))
    axis = figure.axes[0]
    columns = [t.get_text() for t in axis.get_xticklabels()]
    rows_drawn = [t.get_text() for t in axis.get_yticklabels()]
    assert rows_drawn[-1] == "new" and rows_drawn[:-1] == columns
    # Clustering keeps the two close pairs adjacent.
    assert abs(columns.index("a") - columns.index("c")) == 1
    assert abs(columns.index("b") - columns.index("d")) == 1
    figures.save_png(figure, tmp_path / "distances.png")
    check_png(tmp_path / "distances.png")


def test_ranking_figure(tmp_path):
    scores = pl.DataFrame({"task": ["t"] * 3, "model": ["m1", "m2", "m3"],
                           "s1": [0.5, 0.7, 0.6], "s3": [0.55, 0.75, 0.6], "p": [0.8] * 3,
                           "pick_s3": [False, True, False]})
    figure = figures.ranking_figure(scores, top=2)
    assert [t.get_text() for t in figure.axes[0].get_yticklabels()] == ["m3", "m2"]
    figures.save_png(figure, tmp_path / "ranking.png")
    check_png(tmp_path / "ranking.png")


def test_ranking_figure_shows_a_pick_that_fell_back_below_the_top():
    # S3's pick fell back to BMA's model, m1, the lowest by S3: the red bar the title
    # promises must still be there.
    scores = pl.DataFrame({"task": ["t"] * 3, "model": ["m1", "m2", "m3"],
                           "s1": [0.5, 0.7, 0.6], "s3": [0.55, 0.75, 0.6], "p": [0.8] * 3,
                           "pick_s3": [True, False, False]})
    figure = figures.ranking_figure(scores, top=2)
    assert [t.get_text() for t in figure.axes[0].get_yticklabels()] == ["m1", "m2"]
    assert "top 1 models by S3 and the pick" in figure.axes[0].get_title()
    red = [bar.get_facecolor() for bar in figure.axes[0].patches]
    assert red[0] != red[1]


def test_summary_html_escapes_and_formats():
    page = figures.summary_html(pl.DataFrame({"method": ["s3<x>"], "mean_accuracy": [0.69412],
                                              "mean_cost": [None]}), "T", "S3 beats BMA 3 times")
    assert "<td>s3&lt;x&gt;</td><td>0.6941</td><td></td>" in page
    assert "S3 beats BMA 3 times" in page


def test_u_curve_bandwidth_never_takes_an_ot_sigma():
    assert figures.u_curve_bandwidth(0.03, "ot", 0.5) == 0.03  # a fitted knn sigma wins
    assert figures.u_curve_bandwidth(None, "knn", 0.2) == 0.2
    assert figures.u_curve_bandwidth(None, "knn", 1) == 1.0  # YAML gives an int for `1`
    assert figures.u_curve_bandwidth(None, "ot", 0.5) == 0.09  # OT-distance scale: not u's
    assert figures.u_curve_bandwidth(None, "knn", "auto") == 0.09


def test_smoother_figure_takes_the_benchmark_pass_and_its_knn_bandwidth():
    pairs = pl.DataFrame({"heldout": [None, None, "d1", "d1"], "dataset": ["d1", "d2", "d2", "d3"],
                          "model": ["y"] * 4, "u": [0.6, 0.7, 0.1, 0.9],
                          "acc": [0.9, 0.8, 0.2, 0.1]})
    assert pairs_rows(pairs, None).rows() == [(None, "d1", "y", 0.6, 0.9),
                                              (None, "d2", "y", 0.7, 0.8)]
    # The benchmark's fitted knn sigma: not an ot one, nor a held-out task's.
    fitted = pl.DataFrame({"task": ["d1", None, None], "descriptor": ["knn", "ot", "knn"],
                           "bandwidth": [0.5, 0.2, 0.04]})
    assert figures.fitted_knn_bandwidth(fitted) == 0.04
    assert figures.fitted_knn_bandwidth(fitted.head(2)) is None
    assert figures.fitted_knn_bandwidth(fitted.clear()) is None
