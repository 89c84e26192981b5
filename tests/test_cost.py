"""Cost-aware picks, the accuracy-versus-cost frontier, and per-instance routing's rows."""

from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml

from llmrouter import cost, evaluation
from llmrouter.artifacts import InputError
from llmrouter.routing import Pairs, RoutingParams, score_task

from conftest import REPO, require_shared


def test_cheapest_within_epsilon():
    scores = np.array([0.80, 0.78, 0.70, 0.79])
    costs = np.array([100.0, 10.0, 1.0, 10.0])
    tiebreak = np.zeros(4)
    names = ["big", "mid", "small", "mid2"]
    assert cost.cheapest_within(scores, costs, 0.0, tiebreak, names) == 0
    # within 0.02: big, mid, mid2; mid and mid2 cost the same, mid2 scores higher
    assert cost.cheapest_within(scores, costs, 0.02, tiebreak, names) == 3
    assert cost.cheapest_within(scores, costs, 0.1, tiebreak, names) == 2
    # a tie at the top goes to the cheaper model even at epsilon 0
    assert cost.cheapest_within(np.array([0.8, 0.8]), np.array([5.0, 1.0]), 0.0,
                                np.zeros(2), ["a", "b"]) == 1
    with pytest.raises(ValueError, match="epsilon must be >= 0, got -0.1"):
        cost.cheapest_within(scores, costs, -0.1, tiebreak, names)


def _scores() -> pl.DataFrame:
    """Two tasks x three models, hand-made."""
    return pl.DataFrame({
        "task": ["t1"] * 3 + ["t2"] * 3,
        "model": ["a", "b", "c"] * 2,
        "s1": [0.5, 0.6, 0.7, 0.5, 0.6, 0.7],
        "s2": [0.5, 0.6, 0.7, 0.5, 0.6, 0.7],
        "s3": [0.90, 0.85, 0.60, 0.70, 0.95, 0.93],
        "accuracy": [0.8, 0.9, 0.5, 0.6, 0.9, 0.7],
        "bma_score": [0.7, 0.8, 0.6, 0.7, 0.8, 0.6],
        "routed_share": [0.5, 0.5, 0.0, 0.0, 0.25, 0.75],
        "per_instance_accuracy": [0.85, 0.85, 0.85, 0.75, 0.75, 0.75],
    })


def test_frontier_by_hand():
    costs = {"a": 10.0, "b": 20.0, "c": 1.0}
    table = cost.frontier(_scores(), costs, (0.0, 0.06, 0.5))
    assert table.columns == ["method", "epsilon", "mean_accuracy", "mean_cost"]
    got = {(m, e): (a, c) for m, e, a, c in table.iter_rows()}
    # s3, eps 0: t1 -> a (0.8, 10), t2 -> b (0.9, 20)
    assert got[("s3", 0.0)] == pytest.approx((0.85, 15.0))
    # eps 0.06: t1 -> a (b is dearer), t2 -> c (0.93 within 0.06 of 0.95, cost 1)
    assert got[("s3", 0.06)] == pytest.approx((0.75, 5.5))
    # eps 0.5: the cheapest everywhere
    assert got[("s3", 0.5)] == pytest.approx((0.6, 1.0))
    # oracle, eps 0: t1 -> b (0.9), t2 -> b (0.9)
    assert got[("oracle", 0.0)] == pytest.approx((0.9, 20.0))
    # per-instance: accuracy as given, cost weighted by the routed shares
    assert got[("per_instance", 0.0)] == pytest.approx((0.8, (15.0 + 5.75) / 2))


def test_summary_costs_the_picks_and_the_routed_inputs():
    picked = _scores().with_columns(  # s3: a on t1, b on t2; oracle and bma: b on both
        pick_s3=pl.Series([True, False, False, False, True, False]),
        pick_oracle=pl.col("model") == "b", pick_bma=pl.col("model") == "b")
    table = evaluation.summary(picked, {"a": 10, "b": 20.0, "c": 1})  # YAML: ints and floats
    mean_cost = dict(zip(table["method"], table["mean_cost"]))
    assert mean_cost["s3"] == pytest.approx(15.0)
    assert mean_cost["oracle"] == mean_cost["bma"] == pytest.approx(20.0)
    # per-instance: t1 0.5 a + 0.5 b = 15, t2 0.25 b + 0.75 c = 5.75
    assert mean_cost["per_instance"] == pytest.approx((15.0 + 5.75) / 2)
    assert evaluation.summary(picked)["mean_cost"].null_count() == table.height


def test_summary_needs_a_cost_for_every_model():
    # c is picked by no method here, yet a mean over the priced picks only is what the audit
    # (C16) found: with costs, every model of the labelled tasks needs one, as in frontier.
    picked = _scores().with_columns(pick_s3=pl.col("model") == "a",
                                    pick_oracle=pl.col("model") == "b",
                                    pick_bma=pl.col("model") == "b")
    with pytest.raises(InputError, match=r"cost.models: no cost for 1 model\(s\), e.g. \['c'\]"):
        evaluation.summary(picked, {"a": 10.0, "b": 20.0})
    # no cost configured at all (None, or the schema's default {}): mean_cost stays null
    for costs in (None, {}):
        assert evaluation.summary(picked, costs)["mean_cost"].null_count() == 4
    # an unlabelled task's models need no cost: only labelled tasks count
    unlabelled = pl.DataFrame({"task": ["t3"], "model": ["d"], "s1": [0.5], "s2": [0.5],
                               "s3": [0.5], "accuracy": pl.Series([None], dtype=pl.Float64),
                               "bma_score": [0.5], "routed_share": [1.0],
                               "per_instance_accuracy": pl.Series([None], dtype=pl.Float64),
                               "pick_s3": [True], "pick_oracle": [True], "pick_bma": [True]})
    costs = {"a": 10.0, "b": 20.0, "c": 1.0}
    assert evaluation.summary(pl.concat([picked, unlabelled]), costs).equals(
        evaluation.summary(picked, costs))


def test_cost_models_must_name_models_of_the_source():
    # known: every model of results/pool/models.parquet, kept or dropped (here d is dropped)
    cost.check_cost_models({"a": 1.0, "b": 2, "d": 3.0}, ["a", "b", "c", "d"])
    cost.check_cost_models({}, ["a"])
    with pytest.raises(InputError) as error:
        cost.check_cost_models({"a": 1.0, "acme/ghost": 1.0, "b ": 2.0}, ["b", "a", "c", "a"])
    assert str(error.value) == ("config cost.models: unknown model(s) ['acme/ghost', 'b ']; "
                                "known (the source's models with results, and those the "
                                "config names): ['a', 'b', 'c']")
    # A model the config names (helm.models, models.include) whose runs were all missing.
    cost.check_cost_models({"a": 1.0, "e/gone": 2.0}, ["a"], named=["e/gone"])
    with pytest.raises(InputError, match=r"unknown model\(s\) \['e/gone'\]"):
        cost.check_cost_models({"a": 1.0, "e/gone": 2.0}, ["a"], named=["f/other"])


def test_frontier_needs_every_cost(tmp_path: Path):
    with pytest.raises(InputError, match="no cost for 1 model"):
        cost.frontier(_scores(), {"a": 1.0, "b": 2.0})
    table = cost.frontier(_scores(), {"a": 10.0, "b": 20.0, "c": 1.0})
    figure = tmp_path / "frontier.png"
    cost.plot_frontier(table, str(figure), "USD")
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_per_instance_routing_in_scores_picks_and_summary():
    g = np.array([[0.9, 0.2], [0.1, 0.8], [0.6, 0.6]])
    correct = np.array([[1, 0], [0, 0], [0, 1]], dtype=np.uint8)
    pairs = Pairs(["d"], np.array([0.3]), np.array([[0.8, 0.7]]))
    frame = score_task("t", g, 0.3, pairs, np.array([0.5, 0.6]), np.array([0.4, 0.7]),
                       ["a", "b"], RoutingParams(draws=50), correct)
    # inputs go to a, b, and (tie) b, the better model on the pool
    assert frame["routed_share"].to_list() == pytest.approx([1 / 3, 2 / 3])
    # correct: a on input 0 (1), b on input 1 (0), b on input 2 (1)
    assert frame["per_instance_accuracy"].to_list() == pytest.approx([2 / 3, 2 / 3])
    picked = evaluation.picks(frame)
    row = picked.filter(pl.col("method") == "per_instance")
    assert row["model"].item() == evaluation.PER_INSTANCE_MODEL
    assert row["accuracy"].item() == pytest.approx(2 / 3)
    summary = evaluation.summary(frame)
    assert summary.filter(pl.col("method") == "per_instance")["mean_accuracy"].item() == \
        pytest.approx(2 / 3)
    unlabelled = score_task("t", g, 0.3, pairs, np.array([0.5, 0.6]), np.array([0.4, 0.7]),
                            ["a", "b"], RoutingParams(draws=50))
    assert unlabelled["per_instance_accuracy"].null_count() == 2


def test_helm_mmlu_cost_config_validates_and_prices_every_kept_model():
    from snakemake.utils import validate

    config = yaml.safe_load((REPO / "config" / "helm_mmlu_cost.yaml").read_text())
    validate(config, str(REPO / "config.schema.yaml"))
    include = config["models"]["include"]
    costs = config["cost"]["models"]
    assert sorted(include) == sorted(costs) and len(set(include)) == len(include)
    assert all(c > 0 for c in costs.values())
    assert config["cost"]["unit"] == "parameters (billions)"
    assert costs["meta/llama-2-70b"] == 70 and costs["mistralai/mixtral-8x7b-32kseqlen"] == 46.7


def test_helm_mmlu_cost_config_prices_models_of_the_table():
    include = yaml.safe_load((REPO / "config" / "helm_mmlu_cost.yaml").read_text())["models"][
        "include"]
    known = set(pl.read_parquet(require_shared(), columns=["model"])["model"].unique())
    assert set(include) <= known, sorted(set(include) - known)
