"""Hand-computed checks of llmrouter.evaluation (picks, summary, S3 against BMA, Markdown)."""

from __future__ import annotations

import math

import polars as pl
import pytest

from llmrouter import evaluation
from llmrouter.routing import METHODS

R3 = math.sqrt(3) / 2  # 0.8660...


def scores_table(rows: list[tuple], per_instance: dict | None = None,
                 routed: dict | None = None) -> pl.DataFrame:
    """rows: (task, model, s1, s2, s3, p_true, bma_score, accuracy, {methods picking it}).

    The pick_<method> flags are set by hand: summary never recomputes them from the scores.
    per_instance: task -> per_instance_accuracy; routed: (task, model) -> routed_share.
    """
    cols = ["task", "model", "s1", "s2", "s3", "p_true", "bma_score", "accuracy"]
    frame = pl.DataFrame([r[:8] for r in rows], schema=cols, orient="row",
                         schema_overrides={"accuracy": pl.Float64, "p_true": pl.Float64})
    frame = frame.with_columns(
        **{f"pick_{m}": pl.Series([m in r[8] for r in rows]) for m in METHODS})
    if per_instance is not None:
        frame = frame.with_columns(pl.Series(
            "per_instance_accuracy", [per_instance[r[0]] for r in rows], dtype=pl.Float64))
    if routed is not None:
        frame = frame.with_columns(pl.Series(
            "routed_share", [routed.get((r[0], r[1]), 0.0) for r in rows]))
    return frame


# Task A: accuracies 0.8, 0.8, 0.2 (m1 and m2 tie for rank 1; m3 is rank 3 under "min").
#   s1 is constant on A, so A is skipped in s1's correlations.
# Task B: accuracies 0.3, 0.6, 0.9 (ranks 3, 2, 1).
# Task C: unlabelled (accuracy and p_true null), with picks: it must count nowhere.
# p_true = 0 everywhere, so S3 with the true p is 1 - S2 (correlations of S2, negated).
ROWS = [
    # task model  s1    s2   s3   p_true bma  acc   picked by
    ("A", "m1", 0.5, 0.9, 0.7, 0.0, 0.6, 0.8, {"s1", "s2", "oracle"}),
    ("A", "m2", 0.5, 0.5, 0.9, 0.0, 0.7, 0.8, {"s3", "bma"}),
    ("A", "m3", 0.5, 0.1, 0.1, 0.0, 0.5, 0.2, {"s3_true_p"}),
    ("B", "m1", 0.3, 0.1, 0.1, 0.0, 0.4, 0.3, {"s1", "s3_true_p"}),
    ("B", "m2", 0.2, 0.5, 0.2, 0.0, 0.5, 0.6, {"s2", "bma"}),
    ("B", "m3", 0.1, 0.3, 0.6, 0.0, 0.45, 0.9, {"s3", "oracle"}),
    ("C", "m1", 0.9, 0.9, 0.9, None, 0.9, None, {"s1", "s2", "s3", "bma"}),
    ("C", "m2", 0.1, 0.1, 0.1, None, 0.1, None, set()),
]


def by_method(table: pl.DataFrame) -> dict[str, dict]:
    return {row["method"]: row for row in table.iter_rows(named=True)}


def test_summary_accuracy_ratio_bma_share_and_rank():
    # Picks (accuracy, rank):   A                  B
    #   s1         m1 (0.8, 1)   m1 (0.3, 3)  -> mean 0.55, rank 2
    #   s2         m1 (0.8, 1)   m2 (0.6, 2)  -> mean 0.70, rank 1.5
    #   s3         m2 (0.8, 1)   m3 (0.9, 1)  -> mean 0.85, rank 1 (m2 ties m1: "min" rank)
    #   s3_true_p  m3 (0.2, 3)   m1 (0.3, 3)  -> mean 0.25, rank 3
    #   bma        m2 (0.8, 1)   m2 (0.6, 2)  -> mean 0.70, rank 1.5
    #   oracle     m1 (0.8, 1)   m3 (0.9, 1)  -> mean 0.85, rank 1
    # ratio = mean / 0.85; pick_is_bma_pct: share of tasks whose pick is BMA's (m2, m2).
    summary = evaluation.summary(scores_table(ROWS))
    # mean_cost is null in every row without costs, and still a float column: summaries of
    # runs with and without costs concatenate.
    assert summary.schema == evaluation.SUMMARY_SCHEMA
    assert summary.schema["mean_cost"] == pl.Float64
    table = by_method(summary)
    assert list(table) == METHODS  # no per-instance column: no per_instance row
    expected = {  # mean_accuracy, pick_is_bma_pct, mean_rank
        "s1": (0.55, 0.0, 2.0), "s2": (0.70, 50.0, 1.5), "s3": (0.85, 50.0, 1.0),
        "s3_true_p": (0.25, 0.0, 3.0), "bma": (0.70, 100.0, 1.5), "oracle": (0.85, 0.0, 1.0),
    }
    for method, (acc, bma_pct, rank) in expected.items():
        row = table[method]
        assert row["tasks"] == 2, method  # task C (unlabelled) is left out
        assert row["mean_accuracy"] == pytest.approx(acc), method
        assert row["ratio_to_oracle"] == pytest.approx(acc / 0.85), method
        assert row["pick_is_bma_pct"] == pytest.approx(bma_pct), method
        assert row["mean_rank"] == pytest.approx(rank), method
        assert row["mean_cost"] is None, method


def test_summary_correlations_skip_constant_task():
    # s1: A constant (skipped); B x = (0.3, 0.2, 0.1) against y = (0.3, 0.6, 0.9): -1, -1.
    # s2: A x = (0.9, 0.5, 0.1), y = (0.8, 0.8, 0.2): dx = (.4, 0, -.4), dy = (.2, .2, -.4),
    #     r = .24 / sqrt(.32 * .24) = sqrt(3)/2; ranks (3, 2, 1) vs (2.5, 2.5, 1): sqrt(3)/2.
    #     B x = (0.1, 0.5, 0.3): dx = (-.2, .2, 0), dy = (-.3, 0, .3): r = .06 / .12 = 0.5;
    #     ranks (1, 3, 2) vs (1, 2, 3): 0.5.  Mean over A, B: (sqrt(3)/2 + 0.5) / 2.
    # s3: A x = (0.7, 0.9, 0.1): 30 dx = (4, 10, -14), 30 dy = (6, 6, -12),
    #     r = 252 / sqrt(312 * 216) = 7 / (2 sqrt(13)); ranks (2, 3, 1) vs (2.5, 2.5, 1):
    #     sqrt(3)/2. B x = (0.1, 0.2, 0.6): dx = (-.2, -.1, .3), dy = (-.3, 0, .3):
    #     r = .15 / sqrt(.14 * .18) = 5 / (2 sqrt(7)); ranks (1, 2, 3) vs (1, 2, 3): 1.
    # bma: A x = (0.6, 0.7, 0.5): dx = (0, .1, -.1), r = .06 / sqrt(.02 * .24) = sqrt(3)/2;
    #     ranks (2, 3, 1): sqrt(3)/2. B x = (0.4, 0.5, 0.45): dx = (-.05, .05, 0),
    #     r = .015 / sqrt(.005 * .18) = 0.5; ranks (1, 3, 2): 0.5. The same as S2's on these
    #     rows (so they cannot tell the two columns apart; S1's and S3's can).
    # s3_true_p = p_true S2 + (1 - p_true)(1 - S2) = 1 - S2: the negation of S2's.
    # oracle scores by the accuracy itself: 1, 1.
    table = by_method(evaluation.summary(scores_table(ROWS)))
    s2 = (R3 + 0.5) / 2
    s3_pearson = (7 / (2 * math.sqrt(13)) + 5 / (2 * math.sqrt(7))) / 2
    assert table["s1"]["pearson"] == pytest.approx(-1.0)
    assert table["s1"]["spearman"] == pytest.approx(-1.0)
    assert table["s2"]["pearson"] == pytest.approx(s2)
    assert table["s2"]["spearman"] == pytest.approx(s2)
    assert table["s3"]["pearson"] == pytest.approx(s3_pearson)
    assert table["s3"]["spearman"] == pytest.approx((R3 + 1.0) / 2)
    assert table["bma"]["pearson"] == pytest.approx(s2)
    assert table["bma"]["spearman"] == pytest.approx(s2)
    assert table["s3_true_p"]["pearson"] == pytest.approx(-s2)
    assert table["s3_true_p"]["spearman"] == pytest.approx(-s2)
    assert table["oracle"]["pearson"] == pytest.approx(1.0)
    assert table["oracle"]["spearman"] == pytest.approx(1.0)


def test_summary_per_instance_row():
    # Per-instance accuracy A 0.7, B 0.95 (C unlabelled: null, left out): mean 0.825,
    # ratio 0.825 / 0.85; it has no single model: no share of BMA's picks, no rank, no
    # correlations.
    scores = scores_table(ROWS, per_instance={"A": 0.7, "B": 0.95, "C": None})
    row = by_method(evaluation.summary(scores))["per_instance"]
    assert row["tasks"] == 2
    assert row["mean_accuracy"] == pytest.approx(0.825)
    assert row["ratio_to_oracle"] == pytest.approx(0.825 / 0.85)
    assert row["pick_is_bma_pct"] is None
    assert row["mean_rank"] is None
    assert math.isnan(row["pearson"]) and math.isnan(row["spearman"])


def test_summary_mean_cost():
    # Costs m1 1, m2 2, m3 4. s1 picks m1, m1 -> 1; s3 picks m2, m3 -> 3.
    # Per-instance: routed-share-weighted cost: A 0.5*1 + 0.5*2 = 1.5, B 0.25*2 + 0.75*4 = 3.5
    # -> mean 2.5.
    routed = {("A", "m1"): 0.5, ("A", "m2"): 0.5, ("B", "m2"): 0.25, ("B", "m3"): 0.75,
              ("C", "m1"): 1.0}
    scores = scores_table(ROWS, per_instance={"A": 0.7, "B": 0.95, "C": None}, routed=routed)
    table = by_method(evaluation.summary(scores, {"m1": 1, "m2": 2, "m3": 4}))
    assert table["s1"]["mean_cost"] == pytest.approx(1.0)
    assert table["s3"]["mean_cost"] == pytest.approx(3.0)
    assert table["per_instance"]["mean_cost"] == pytest.approx(2.5)


def test_picks_rows_with_per_instance():
    # One row per (task, method) whose pick_<method> is set, plus one per-instance row per
    # task (model "per-instance", the task's per_instance_accuracy), sorted by task, method.
    rows = [
        ("A", "m1", 0, 0, 0, 0.5, 0, 0.4, {"s1", "bma"}),
        ("A", "m2", 0, 0, 0, 0.5, 0, 0.7, {"s2", "s3", "s3_true_p", "oracle"}),
        ("B", "m1", 0, 0, 0, None, 0, None, {"s1", "s2", "s3", "bma"}),
        ("B", "m2", 0, 0, 0, None, 0, None, set()),
    ]
    picked = evaluation.picks(scores_table(rows, per_instance={"A": 0.6, "B": None}))
    assert picked.columns == ["task", "method", "model", "accuracy"]
    assert picked.rows() == [
        ("A", "bma", "m1", 0.4),
        ("A", "oracle", "m2", 0.7),
        ("A", "per_instance", evaluation.PER_INSTANCE_MODEL, 0.6),
        ("A", "s1", "m1", 0.4),
        ("A", "s2", "m2", 0.7),
        ("A", "s3", "m2", 0.7),
        ("A", "s3_true_p", "m2", 0.7),
        ("B", "bma", "m1", None),
        ("B", "per_instance", evaluation.PER_INSTANCE_MODEL, None),
        ("B", "s1", "m1", None),
        ("B", "s2", "m1", None),
        ("B", "s3", "m1", None),
    ]


def test_s3_versus_bma_counts():
    # S3 - BMA per task: W +0.1 (beats), X 0 (ties), Y -0.3, Z -0.4 (loses);
    # U is unlabelled (null accuracies): counted nowhere.
    picked = pl.DataFrame({
        "task": ["W", "W", "X", "X", "Y", "Y", "Z", "Z", "U", "U"],
        "method": ["s3", "bma"] * 5,
        "model": ["m"] * 10,
        "accuracy": [0.5, 0.4, 0.5, 0.5, 0.3, 0.6, 0.2, 0.6, None, None],
    })
    assert evaluation.s3_versus_bma(picked) == {"beats": 1, "ties": 1, "loses": 2}


def test_summary_markdown_format():
    # Floats with 4 decimals (1.0 too), ints as they are, None as an empty cell.
    table = pl.DataFrame({"method": ["s3", "bma"], "tasks": [2, 3],
                          "mean_accuracy": [0.123456, 1.0], "mean_cost": [None, 2.5]})
    text = evaluation.summary_markdown(table, {"beats": 1, "ties": 1, "loses": 2}, "Title")
    assert text == "\n".join([
        "# Title",
        "",
        "| method | tasks | mean_accuracy | mean_cost |",
        "|---|---|---|---|",
        "| s3 | 2 | 0.1235 |  |",
        "| bma | 3 | 1.0000 | 2.5000 |",
        "",
        "S3 against BMA over 4 tasks: beats 1, ties 1, loses 2.",
        "",
    ])
