"""Reference mode reproduces the authors' code on helm_mmlu (../shared/reference/).

Protocol as in ../shared/reference/README.md: ai21/jamba-1.5-mini dropped, reference-mode
evaluation, all-MiniLM-L6-v2 fp32 embeddings. Checks: every subject's S1 and S2 pick is in the
reference's tied-top set, BMA and Oracle picks are the reference's, S3's pick (and S3 with the
true p's, but for two knife-edge subjects) is one the reference made in its 10 repeats, and the
mean accuracies are within what this data allows of the reference's.
"""

import json

import polars as pl
import pytest

from conftest import HELM_MMLU, SHARED, require_shared, run_workflow, write_config

pytestmark = pytest.mark.slow
REFERENCE = SHARED / "reference"


def short(model: str) -> str:
    """The reference files name models without the org prefix."""
    return model.split("/", 1)[-1]


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory) -> tuple[pl.DataFrame, pl.DataFrame]:
    require_shared(REFERENCE / "helm_mmlu_reference_per_task.csv")
    work = tmp_path_factory.mktemp("reference")
    config = write_config(work, require_shared(HELM_MMLU),
                          models={"exclude": ["ai21/jamba-1.5-mini"]},
                          evaluation={"mode": "reference"},
                          embedding={"precision": "float32", "max_seq_length": 256})
    # Only what the comparison needs: the ablation and figures have tests of their own.
    run_workflow(config, str(work / "results" / "report" / "picks.parquet"))
    picks = pl.read_parquet(work / "results" / "report" / "picks.parquet")
    expected = pl.read_csv(REFERENCE / "helm_mmlu_reference_per_task.csv")
    return picks.with_columns(pl.col("model").map_elements(short, return_dtype=pl.String)), expected


def pick_of(picks: pl.DataFrame, method: str) -> dict[str, tuple[str, float]]:
    rows = picks.filter(pl.col("method") == method)
    return {t: (m, a) for t, m, a in rows.select("task", "model", "accuracy").iter_rows()}


def test_every_subject_is_scored(reference_run):
    picks, expected = reference_run
    assert sorted(picks["task"].unique()) == sorted(expected["task"])


@pytest.mark.parametrize("method", ["s1", "s2"])
def test_s1_s2_picks_are_in_the_reference_tie_sets(reference_run, method):
    picks, expected = reference_run
    mine = pick_of(picks, method)
    wrong = []
    for row in expected.iter_rows(named=True):
        tied = row[f"{method}_tied_top"].split("|")
        if mine[row["task"]][0] not in tied:
            wrong.append((row["task"], mine[row["task"]][0], tied))
    assert wrong == []


def test_bma_picks_equal_the_reference(reference_run):
    picks, expected = reference_run
    mine = pick_of(picks, "bma")
    wrong = [(row["task"], mine[row["task"]], row["bma"]) for row in expected.iter_rows(named=True)
             if mine[row["task"]][0] != row["bma"]
             or abs(mine[row["task"]][1] - row["bma_acc"]) > 1e-6]
    assert wrong == []


def test_oracle_picks_equal_the_reference_up_to_ties(reference_run):
    """Where several models share the best accuracy the reference's argsort picks one of them
    arbitrarily; ours breaks the tie by pool accuracy. Either way the accuracy is the same, and
    where there is no tie the model is the same."""
    picks, expected = reference_run
    mine = pick_of(picks, "oracle")
    tied = 0
    wrong = []
    for row in expected.iter_rows(named=True):
        model, accuracy = mine[row["task"]]
        if abs(accuracy - row["oracle_acc"]) > 1e-6:
            wrong.append((row["task"], model, accuracy, row["oracle"], row["oracle_acc"]))
        tied += model != row["oracle"]
    assert wrong == []
    assert tied <= 10, "more oracle ties than the reference data holds"


def repeat_picks(cell: str) -> dict[str, int]:
    """`model:count|model:count` of the reference's picks over its repeats (a model name may
    hold a colon itself: nova-pro-v1:0)."""
    return {model: int(count) for model, count in (p.rsplit(":", 1) for p in cell.split("|"))}


# Subjects where our S3-with-the-true-p pick is none of the reference's (measured: exactly
# these two, in a run of this test), both on a knife edge:
# - high_school_us_history: ours is deepseek-v3, the argmax of S3 with the true p (196 of 204
#   right, the oracle's pick; gpt-4o-2024-05-13 is one input behind, 195) that beats BMA in 84%
#   of the draws, far above the 0.6 cut. The reference kept BMA in all 10 repeats, which the
#   same rule cannot give on these predictions, so its predictions there differ slightly; this
#   pick moves with the embeddings' rounding too (bf16 gives gpt-4o-2024-05-13,
#   benchmarks/README.md).
# - virology: ours falls back to BMA; the reference's pick, claude-3-5-sonnet-20240620, is also
#   our argmax, but it beats BMA in 60.9% of draws in expectation, so 1000 draws fall below the
#   0.6 cut about one time in four (our seeded stream: 0.572).
# S3 with the estimated p has no such subject: its pick is always one of the reference's.
KNOWN_MISMATCHES = {"s3": set(), "s3_true_p": {"high_school_us_history", "virology"}}


@pytest.mark.parametrize("method", ["s3", "s3_true_p"])
def test_s3_picks_are_among_the_reference_repeats_picks(reference_run, method):
    """The reference's S3 picks vary over its repeats only through the fallback's draws (3
    subjects for S3, 2 with the true p): a faithful pick is any model it picked at least once.
    Per subject, since a mean cannot tell S3 from BMA or S1: theirs are within 0.0015 of it."""
    picks, expected = reference_run
    mine = pick_of(picks, method)
    wrong = {}
    for row in expected.iter_rows(named=True):
        allowed = repeat_picks(row[f"{method}_picks"])
        assert sum(allowed.values()) == 10, row["task"]  # the reference's repeats
        if mine[row["task"]][0] not in allowed:
            wrong[row["task"]] = (mine[row["task"]][0], allowed)
    assert set(wrong) <= KNOWN_MISMATCHES[method], wrong


def test_mean_accuracies_match_the_reference(reference_run):
    """Mean accuracy of the picks over the 57 subjects against the reference's summary, each
    within what the data allow (measured, 2026-12: S3 -0.00021, S3 true p -0.00024,
    S1 -0.00068, BMA and Oracle 0):
    - S3: one run against the mean of 10 repeats, whose spread is +-0.0003; BMA (0.87279) and
      S1 (0.87549) are more than 0.0012 from S3's 0.87422, so a bound of 0.0005 tells them
      apart.
    - S3 true p: the two KNOWN_MISMATCHES subjects, (0.9608 - 0.9559 + 0.5843 - 0.6024) / 57.
    - S1: one two-way tie broken the other way (management: ours gemini-1.5-pro-002 0.9029,
      the reference's gpt-4o-2024-05-13 0.9417), -0.0388 / 57.
    - BMA, Oracle: the same picks' accuracies (ties of the oracle at equal accuracy).
    S2 is left out: among its tie sets (34 subjects) the reference picks arbitrarily and we by
    pool accuracy, which moves its mean by 0.009."""
    picks, _ = reference_run
    summary = json.loads((REFERENCE / "helm_mmlu_reference_summary.json").read_text())
    # A little room over what was measured: S1's for one tie that rounds the other way on
    # another CPU (one flip moves a mean by about 0.0007); S3's none for a flip of its pick,
    # which the per-subject check forbids too, while it still tells S3 from BMA and S1.
    bounds = {"s3": ("S3", 0.0005), "s3_true_p": ("S3 true p", 0.0005), "s1": ("S1", 0.0014),
              "bma": ("BMA", 1e-9), "oracle": ("Oracle", 1e-9)}
    off = {}
    for method, (key, bound) in bounds.items():
        mine = picks.filter(pl.col("method") == method)["accuracy"].mean()
        target = summary["methods"][key]["mean_accuracy"]
        if abs(mine - target) > bound:
            off[method] = (mine, target)
    assert off == {}
