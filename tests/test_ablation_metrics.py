"""Hand-computed checks of the ablation's per-variant metrics and its seed aggregation."""

from __future__ import annotations

import logging
import math
from types import SimpleNamespace

import polars as pl
import pytest

from conftest import sized_pool
from llmrouter import ablation
from llmrouter.routing import METHODS, RoutingParams


def scores_table(rows: list[tuple]) -> pl.DataFrame:
    """rows: (task, model, accuracy, p, p_true, bandwidth, {methods picking it})."""
    frame = pl.DataFrame([r[:6] for r in rows], orient="row",
                         schema=["task", "model", "accuracy", "p", "p_true", "bandwidth"])
    return frame.with_columns(
        **{f"pick_{m}": pl.Series([m in r[6] for r in rows]) for m in METHODS})


# Task A: S3 0.8 beats BMA 0.6; B: S3 0.6 loses to BMA 0.7; C: S3 = BMA = 0.9 (tie).
# |p - p_true|: 0.1, 0.2, 0.0, 0.3, 0.1, 0.1; bandwidth per task 0.1, 0.2, 0.4.
ROWS = [
    # task model acc  p    p_true bw   picked by
    ("A", "m1", 0.6, 0.5, 0.4, 0.1, {"s1", "bma"}),
    ("A", "m2", 0.8, 0.7, 0.5, 0.1, {"s2", "s3", "s3_true_p", "oracle"}),
    ("B", "m1", 0.6, 0.6, 0.6, 0.2, {"s1", "s3"}),
    ("B", "m2", 0.7, 0.2, 0.5, 0.2, {"s2", "s3_true_p", "bma", "oracle"}),
    ("C", "m1", 0.9, 0.8, 0.7, 0.4, {"s2", "s3", "s3_true_p", "bma", "oracle"}),
    ("C", "m2", 0.4, 0.4, 0.5, 0.4, {"s1"}),
]


def test_variant_metrics_by_hand():
    # s1: (0.6 + 0.6 + 0.4) / 3; s2 = s3_true_p = oracle: (0.8 + 0.7 + 0.9) / 3 = 0.8;
    # s3: (0.8 + 0.6 + 0.9) / 3; bma: (0.6 + 0.7 + 0.9) / 3.
    # s3_gap_closed = (S3 - BMA) / (Oracle - BMA) = (2.3 - 2.2) / (2.4 - 2.2) = 0.5.
    # p_mae = (0.1 + 0.2 + 0 + 0.3 + 0.1 + 0.1) / 6 = 0.8 / 6; median bandwidth 0.2.
    out = ablation.variant_metrics(scores_table(ROWS))
    assert out["s1"] == pytest.approx(1.6 / 3)
    assert out["s2"] == pytest.approx(0.8)
    assert out["s3"] == pytest.approx(2.3 / 3)
    assert out["s3_true_p"] == pytest.approx(0.8)
    assert out["bma"] == pytest.approx(2.2 / 3)
    assert out["oracle"] == pytest.approx(0.8)
    assert math.isnan(out["per_instance"])  # no per-instance column in these scores
    assert out["s3_gap_closed"] == pytest.approx(0.5)
    assert out["p_mae"] == pytest.approx(0.8 / 6)
    assert (out["s3_beats_bma"], out["s3_ties_bma"], out["s3_loses_bma"]) == (1, 1, 1)
    assert out["median_bandwidth"] == pytest.approx(0.2)


def test_variant_metrics_gap_closed_nan_when_oracle_is_bma():
    # BMA picks the oracle's model on every task: Oracle - BMA = 0 -> NaN, not an error.
    rows = [(*r[:6], r[6] | {"bma"} if "oracle" in r[6] else r[6] - {"bma"}) for r in ROWS]
    out = ablation.variant_metrics(scores_table(rows))
    assert out["bma"] == out["oracle"] == pytest.approx(0.8)
    assert math.isnan(out["s3_gap_closed"])
    # S3 against BMA (= Oracle): A tie 0.8/0.8, B loses 0.6/0.7, C tie.
    assert (out["s3_beats_bma"], out["s3_ties_bma"], out["s3_loses_bma"]) == (0, 2, 1)


def one_task(s3_model: str, p_error: float, bw: float) -> pl.DataFrame:
    # m1 acc 0.4 (BMA and everything else), m2 acc 0.8 (Oracle); S3 picks `s3_model`.
    return scores_table([
        ("A", "m1", 0.4, 0.5 + p_error, 0.5, bw,
         {"s1", "s2", "s3_true_p", "bma"} | ({"s3"} if s3_model == "m1" else set())),
        ("A", "m2", 0.8, 0.5 + p_error, 0.5, bw,
         {"oracle"} | ({"s3"} if s3_model == "m2" else set())),
    ])


def test_ablation_table_seed_mean_and_std(monkeypatch, caplog):
    # Variant "a" (alpha > 0) is scored with seeds 0 and 1, "b" (alpha 0) with seed 0 only.
    #   seed 0: S3 picks m2 (0.8, beats, gap closed 1), |p - p_true| 0.1, bandwidth 0.1
    #   seed 1: S3 picks m1 (0.4, ties,  gap closed 0), |p - p_true| 0.3, bandwidth 0.3
    # "a": s3 mean 0.6, sample std (ddof 1) sqrt(0.08) = 0.2828; p_mae mean 0.2, std 0.1414;
    #      gap closed mean 0.5, std 0.7071; beats 0.5, ties 0.5, median bandwidth 0.2.
    # "b": seed 0's numbers; one seed has no spread (NaN).
    calls = []

    def fake_score_variant(inputs, variant, base, seed=0, grid=None):
        calls.append((variant.name, seed))
        return one_task("m2", 0.1, 0.1) if seed == 0 else one_task("m1", 0.3, 0.3)

    monkeypatch.setattr(ablation, "score_variant", fake_score_variant)
    variants = [ablation.Variant("a", alpha=0.1), ablation.Variant("b")]
    caplog.set_level(logging.INFO)
    inputs = SimpleNamespace(pool=sized_pool([100, 150, 1534]))
    table, scores = ablation.ablation_table(inputs, variants, RoutingParams(), repeats=2)
    assert calls == [("a", 0), ("a", 1), ("b", 0)]
    # the log tells how far the job is, and how many points each alpha labels
    assert "a: 10 to 50 labelled points per task (mean 25.0)" in caplog.messages
    assert [m.split(":")[0] for m in caplog.messages if " so far, about " in m] == [
        "1/3 a, seed 0", "2/3 a, seed 1", "3/3 b, seed 0"]
    assert scores.height == 6  # every score row of every call
    a, b = table.iter_rows(named=True)
    assert (a["variant"], a["repeats"], a["alpha"], b["repeats"]) == ("a", 2, 0.1, 1)
    assert a["s3"] == pytest.approx(0.6) and a["s3_std"] == pytest.approx(0.08 ** 0.5)
    assert a["p_mae"] == pytest.approx(0.2) and a["p_mae_std"] == pytest.approx(0.02 ** 0.5)
    assert a["s3_gap_closed_std"] == pytest.approx(0.5 ** 0.5)
    assert (a["s3_beats_bma"], a["s3_ties_bma"], a["s3_loses_bma"]) == (0.5, 0.5, 0.0)
    assert a["s3_gap_closed"] == pytest.approx(0.5)
    assert a["median_bandwidth"] == pytest.approx(0.2)
    assert a["bma"] == pytest.approx(0.4) and a["oracle"] == pytest.approx(0.8)
    assert b["s3"] == pytest.approx(0.8)
    assert all(math.isnan(b[k]) for k in ("s3_std", "s3_gap_closed_std", "p_mae_std"))
    assert b["s3_gap_closed"] == pytest.approx(1.0)

    text = ablation.ablation_markdown(table, "T", ["a note"])
    lines = text.split("\n")
    assert lines[0] == "# T" and lines[-3:] == ["", "a note", ""]
    # Accuracies etc. with 4 decimals (per_instance: NaN), S3-vs-BMA counts with :g.
    assert lines[4] == ("| a | 0.4000 | 0.4000 | 0.6000 | 0.4000 | 0.4000 | 0.8000 | nan | "
                        "0.5000 | 0.2000 | 0.5 | 0.5 | 0 | 0.2000 | 0.2828 | 0.7071 | 0.1414 |")
    assert lines[5] == ("| b | 0.4000 | 0.4000 | 0.8000 | 0.4000 | 0.4000 | 0.8000 | nan | "
                        "1.0000 | 0.1000 | 1 | 0 | 0 | 0.1000 | nan | nan | nan |")


def test_labelled_counts_say_where_a_small_alpha_labels_nothing():
    pool = sized_pool([100, 150, 1534])
    assert ablation.labelled_counts(pool, 0.005) == (
        "0 to 7 labelled points per task (mean 2.3); none on 2 of 3 tasks")
