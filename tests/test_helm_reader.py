"""The HELM reader on real HELM run folders (../shared/helm_fixtures)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import polars as pl
import pytest

from conftest import SHARED, require_shared
from llmrouter.artifacts import InputError
from llmrouter.helm import reader
from llmrouter.helm.convert import RunScores, dataset_table, read_run, run_model

FIXTURES = SHARED / "helm_fixtures"
BABI = FIXTURES / "helm_data_downloader" / "run"
BABI_RUN = "babi_qa:task=15,model=AlephAlpha_luminous-base"
EEE = FIXTURES / "every_eval_ever"
EEE_RUNS = {
    # run name: (model, metric, split of its evaluation instances, instances)
    "mmlu:subject=philosophy,method=multiple_choice_joint,model=openai_gpt2":
        ("openai/gpt2", "exact_match", "test", 9),
    "commonsense:dataset=hellaswag,method=multiple_choice_joint,model=eleutherai_pythia-1b-v0":
        ("eleutherai/pythia-1b-v0", "exact_match", "valid", 10),
    "narrative_qa:model=openai_gpt2": ("openai/gpt2", "f1_score", "test", 4),
}


def load(path: Path) -> object:
    return json.loads(path.read_text())


def stats_mean(folder: Path, metric: str, split: str) -> float:
    """The run-level mean HELM itself wrote in stats.json (unperturbed)."""
    for stat in load(folder / "stats.json"):
        name = stat["name"]
        if name["name"] == metric and name.get("split") == split and not name.get("perturbation"):
            return stat["mean"]
    raise AssertionError(f"{metric}/{split} not in {folder}/stats.json")


def test_babi_qa_display_files():
    require_shared(BABI)
    instances = reader.read_instances(load(BABI / "instances.json"), "instances.json")
    trials = reader.read_display_predictions(load(BABI / "display_predictions.json"),
                                             "quasi_exact_match", "display_predictions.json")
    assert instances.height == 1000
    assert instances["split"].value_counts().sort("split").rows() == [("test", 909),
                                                                      ("valid", 91)]
    assert trials.height == 3000
    assert trials.group_by("instance_id").len()["len"].unique().to_list() == [3]
    assert sorted(trials["train_trial_index"].unique().to_list()) == [0, 1, 2]
    first = instances.row(0, named=True)
    assert first["instance_id"] == "id1295"
    assert first["text"].startswith("Sheep are afraid of mice.")

    scores = reader.instance_scores(instances, trials)
    assert scores.height == 909  # the test split only
    assert scores["n_trials"].unique().to_list() == [3]
    # Per-instance means over trials average to HELM's own quasi_exact_match on test.
    assert scores["score"].mean() == pytest.approx(
        stats_mean(BABI, "quasi_exact_match", "test"), abs=1e-12)
    assert stats_mean(BABI, "quasi_exact_match", "test") == pytest.approx(0.25375870920425375)
    # id1760 was right in one of its three trials.
    assert scores.filter(instance_id="id1760")["score"].item() == pytest.approx(1 / 3)


def test_babi_qa_run_to_correctness_table():
    require_shared(BABI)
    downloads = pl.DataFrame([{
        "run": BABI_RUN, "suite": "v0.3.0", "status": "ok", "folder": str(BABI),
        "files": ["run_spec.json", "instances.json", "display_predictions.json"], "reason": ""}])
    table, report, _ = dataset_table("babi_qa_task_15", downloads)
    assert table.columns == ["dataset", "instance_id", "text", "model", "score", "correct"]
    assert table["model"].unique().to_list() == ["AlephAlpha/luminous-base"]
    assert table["instance_id"][0] == "babi_qa_task_15:id1295"
    # 909 test instances, repeated texts dropped as the table source does.
    assert table.height == 909 - report.repeated_texts
    # quasi_exact_match threshold 0.5: 2 of 3 trials right is correct, 1 of 3 is not.
    assert table.filter(pl.col("score") > 0.5)["correct"].all()
    assert not table.filter(pl.col("score") < 0.5)["correct"].any()


@pytest.mark.parametrize("run", sorted(EEE_RUNS))
def test_per_instance_stats_runs(run):
    folder = require_shared(EEE / run)
    model, metric, split, n = EEE_RUNS[run]
    scores = read_run(folder, ["run_spec.json", "scenario_state.json",
                               "per_instance_stats.json"], run)
    assert (scores.model, scores.metric, scores.rows.height) == (model, metric, n)
    assert scores.rows["score"].mean() == pytest.approx(stats_mean(folder, metric, split))


def test_multiple_choice_text_has_lettered_options():
    folder = require_shared(EEE / "mmlu:subject=philosophy,method=multiple_choice_joint,"
                                  "model=openai_gpt2")
    scores = read_run(folder, ["run_spec.json", "scenario_state.json",
                               "per_instance_stats.json"],
                      "mmlu:subject=philosophy,method=multiple_choice_joint,model=openai_gpt2")
    text = scores.rows.filter(instance_id="id147")["text"].item()
    assert text == ("What does the notion of “meaning in life” refer to?\nA. external meaning\n"
                    "B. god's plan\nC. internalmeaning\nD. meaning in an afterlife")


def test_perturbed_rows_are_ignored():
    instances = [
        {"id": "id1", "split": "test", "input": {"text": "q"}, "references": []},
        {"id": "id1", "split": "test", "input": {"text": "Q!"}, "references": [],
         "perturbation": {"name": "typos"}},
        {"id": "id2", "split": "train", "input": {"text": "t"}, "references": []},
    ]
    predictions = [
        {"instance_id": "id1", "train_trial_index": 0, "stats": {"exact_match": 1.0}},
        {"instance_id": "id1", "train_trial_index": 0, "stats": {"exact_match": 0.0},
         "perturbation": {"name": "typos"}},
    ]
    scores = reader.instance_scores(reader.read_instances(instances, "i"),
                                    reader.read_display_predictions(predictions, "exact_match",
                                                                    "p"))
    assert scores.select("instance_id", "text", "score").rows() == [("id1", "q", 1.0)]


def test_per_instance_stat_with_a_mean_needs_no_sum():
    stats = [{"instance_id": "id1", "stats": [
        {"name": {"name": "exact_match", "split": "test"}, "count": 1, "mean": 1.0}]},
        {"instance_id": "id2", "stats": [
        {"name": {"name": "exact_match", "split": "test"}, "count": 2, "sum": 1.0}]}]
    rows = reader.read_per_instance_stats(stats, "exact_match", "per_instance_stats.json")
    assert rows.select("instance_id", "value").rows() == [("id1", 1.0), ("id2", 0.5)]


def test_bad_files_name_the_file():
    with pytest.raises(InputError, match="display_predictions.json.*'exact_match'"):
        reader.read_display_predictions(
            [{"instance_id": "id1", "stats": {"f1_score": 1.0}}], "exact_match",
            "display_predictions.json")
    with pytest.raises(InputError, match="instances.json"):
        reader.read_instances([{"split": "test"}], "instances.json")


def test_records_in_another_format_are_named_plainly():
    with pytest.raises(InputError, match=r"p.json: a prediction is not in HELM's format "
                                         r"\(AttributeError"):
        reader.read_display_predictions([{"instance_id": "i", "stats": None}], "m", "p.json")
    with pytest.raises(InputError, match=r"i.json: an instance without 'id'"):
        reader.read_instances([{"split": "test"}], "i.json")


def instance(text: object = "q", **fields: object) -> dict:
    """An instances.json record with input `text` and two options."""
    return {"id": "id1", "split": "test", "input": {"text": text},
            "references": [{"output": {"text": "yes"}, "tags": []},
                           {"output": {"text": "no"}, "tags": []}], **fields}


@pytest.mark.parametrize("record, multiple_choice, fault", [
    (instance({"a": 1}), False, "input.text is a dict, not a string"),
    (instance(["a"]), False, "input.text is a list, not a string"),
    (instance(split={"a": 1}), False, "split is a dict, not a string"),
    (instance(id=["id1"]), False, "id is a list, not a string"),
    ({**instance(), "references": [{"output": {"text": {"a": 1}}}]}, True,
     "references[0].output.text is a dict, not a string"),
])
def test_an_instance_with_a_record_for_a_text_names_the_file(record, multiple_choice, fault):
    with pytest.raises(InputError, match=re.escape(
            f"i.json: an instance is not in HELM's format (TypeError: {fault})")):
        reader.read_instances([instance(), record], "i.json", multiple_choice)


def test_a_generation_run_with_a_record_for_a_text_names_its_instances_file(tmp_path):
    run = "narrative_qa:model=acme_m"
    (tmp_path / "run_spec.json").write_text(json.dumps(
        {"adapter_spec": {"model": "acme/m", "method": "generation"}}))
    (tmp_path / "instances.json").write_text(json.dumps([instance(), instance({"a": 1})]))
    (tmp_path / "display_predictions.json").write_text(json.dumps(
        [{"instance_id": "id1", "train_trial_index": 0, "stats": {"f1_score": 1.0}}]))
    files = ["run_spec.json", "instances.json", "display_predictions.json"]
    with pytest.raises(InputError, match=re.escape(
            f"{tmp_path / 'instances.json'}: an instance is not in HELM's format")):
        read_run(tmp_path, files, run)


def test_a_text_that_is_not_unicode_names_the_instance():
    # JSON may hold a lone surrogate; UTF-8 (polars, parquet, the log) cannot.
    records = json.loads('[{"id": "id7", "split": "test", "input": {"text": "a \\ud800"}}]')
    with pytest.raises(InputError, match=re.escape(
            "i.json: the text of instance 'id7' is not valid Unicode (surrogates not allowed "
            "at character 2)")) as error:
        reader.read_instances(records, "i.json")
    str(error.value).encode("utf-8")  # the message itself can be logged
    option = json.loads('{"text": "b \\udfff"}')
    with pytest.raises(InputError, match=r"i.json: the text of instance 'id1' is not valid"):
        reader.read_instances([{**instance(), "references": [{"output": option}]}], "i.json",
                              multiple_choice=True)
    # Ids are not checked one by one for this; the frame's guard still names the file.
    with pytest.raises(InputError, match=r"i.json: an instance has text that is not valid "
                                         r"Unicode \(surrogates not allowed\)") as error:
        reader.read_instances([instance(id=json.loads('"id\\ud800"'))], "i.json")
    str(error.value).encode("utf-8")


def test_null_fields_are_named_not_read_as_none():
    # str(None) would make every null id the one instance "None".
    with pytest.raises(InputError, match=r"^i.json: an instance has id null"):
        reader.read_instances([instance(id=None), instance(id=None)], "i.json")
    with pytest.raises(InputError, match=r"^i.json: an instance has input.text null"):
        reader.read_instances([instance(None)], "i.json")
    with pytest.raises(InputError, match=r"^i.json: an instance has "
                                         r"references\[1\].output.text null"):
        reader.read_instances([{**instance(), "references": [
            {"output": {"text": "yes"}}, {"output": {"text": None}}]}], "i.json",
            multiple_choice=True)
    with pytest.raises(InputError, match=r"^p.json: a prediction has instance_id null"):
        reader.read_display_predictions(
            [{"instance_id": None, "stats": {"exact_match": 1.0}},
             {"instance_id": None, "stats": {"exact_match": 0.0}}], "exact_match", "p.json")
    with pytest.raises(InputError, match=r"^s.json: a stat has instance_id null"):
        reader.read_per_instance_stats(
            [{"instance_id": None, "stats": [
                {"name": {"name": "exact_match", "split": "test"}, "count": 1, "mean": 1.0}]}],
            "exact_match", "s.json")


def test_a_run_spec_with_a_null_model_or_method_is_named():
    assert run_model({"adapter_spec": {"model": "acme/m"}}, "r.json") == ("acme/m", "")
    with pytest.raises(InputError, match=r"^r.json: the run spec has adapter_spec.model null"):
        run_model({"adapter_spec": {"model": None, "method": "generation"}}, "r.json")
    with pytest.raises(InputError, match=r"^r.json: the run spec has adapter_spec.method null"):
        run_model({"adapter_spec": {"model": "acme/m", "method": None}}, "r.json")


def test_a_run_whose_predictions_match_no_instance_is_an_error(tmp_path):
    run = "mmlu:subject=anatomy,method=multiple_choice_joint,model=acme_m"
    (tmp_path / "run_spec.json").write_text(json.dumps(
        {"adapter_spec": {"model": "acme/m", "method": "multiple_choice_joint"}}))
    (tmp_path / "instances.json").write_text(json.dumps(
        [{"id": "id1", "split": "test", "input": {"text": "q"}, "references": []}]))
    (tmp_path / "display_predictions.json").write_text(json.dumps(
        [{"instance_id": "id9", "train_trial_index": 0, "stats": {"exact_match": 1.0}}]))
    files = ["run_spec.json", "instances.json", "display_predictions.json"]
    with pytest.raises(InputError, match=f"{tmp_path}: no instance of run {re.escape(run)} "
                                         "has a score") as error:
        read_run(tmp_path, files, run)
    # Files that parse are kept by the download, so --forcerun alone would fetch nothing.
    assert "delete that folder" in str(error.value)


def test_runs_that_disagree_on_an_instance_text_are_named(monkeypatch):
    # Two models' runs from different suites whose texts of one instance differ: the
    # correctness table refuses it, and the message names the runs and the way out.
    runs = {"mmlu:subject=anatomy,method=multiple_choice_joint,model=a_one": ("a/one", "Q?"),
            "mmlu:subject=anatomy,method=multiple_choice_joint,model=b_two": ("b/two", "Q (v2)?")}

    def fake_read_run(folder, files, run, metrics=None):
        model, text = runs[run]
        rows = pl.DataFrame({"instance_id": ["id1"], "text": [text], "score": [1.0],
                             "n_trials": [1]})
        return RunScores(model=model, metric="exact_match", rows=rows, n_trials=1)

    monkeypatch.setattr("llmrouter.helm.convert.read_run", fake_read_run)
    downloads = pl.DataFrame([{"run": run, "suite": "v", "status": "ok", "folder": "f",
                               "files": [], "reason": ""} for run in runs])
    with pytest.raises(InputError, match=r"dataset 'anatomy': 1 instance\(s\) with different "
                                         r"texts.*HELM runs \['mmlu:subject=anatomy,.*"
                                         r"model=a_one', .*model=b_two'\]; leave a run out "
                                         r"with helm.runs.exclude"):
        dataset_table("anatomy", downloads)


def generation_run(folder: Path, stats: dict[str, float]) -> list[str]:
    """A one-instance generation run in `folder` whose display row carries `stats`."""
    (folder / "run_spec.json").write_text(json.dumps(
        {"adapter_spec": {"model": "acme/m", "method": "generation"}}))
    (folder / "instances.json").write_text(json.dumps([instance()]))
    (folder / "display_predictions.json").write_text(json.dumps(
        [{"instance_id": "id1", "train_trial_index": 0, "stats": stats}]))
    return ["run_spec.json", "instances.json", "display_predictions.json"]


@pytest.mark.parametrize("run, stats, metric", [
    # HELM's run_specs: math_equiv_chain_of_thought with use_chain_of_thought=True, else
    # math_equiv; Classic's gsm (v0.3.0) exact_match_indicator, later suites both.
    ("math:subject=algebra,level=1,use_chain_of_thought=True,model=acme_m",
     {"math_equiv_chain_of_thought": 1.0}, "math_equiv_chain_of_thought"),
    ("math:subject=algebra,level=1,use_chain_of_thought=False,model=acme_m",
     {"math_equiv": 1.0}, "math_equiv"),
    ("gsm:model=acme_m", {"exact_match_indicator": 1.0}, "exact_match_indicator"),
    ("gsm:model=acme_m", {"exact_match_indicator": 0.0, "final_number_exact_match": 1.0},
     "final_number_exact_match"),
])
def test_a_run_is_scored_with_the_first_metric_it_computes(tmp_path, run, stats, metric):
    # math with use_chain_of_thought=False and Classic's gsm could not be read at all.
    scores = read_run(tmp_path, generation_run(tmp_path, stats), run)
    assert scores.metric == metric and scores.rows["score"].to_list() == [1.0]


def test_a_metric_set_in_the_config_is_the_only_candidate(tmp_path):
    files = generation_run(tmp_path, {"math_equiv": 1.0})
    run = "math:subject=algebra,level=1,use_chain_of_thought=False,model=acme_m"
    with pytest.raises(InputError, match=re.escape(
            f"{tmp_path}: no unperturbed row of display_predictions.json has metric "
            "'math_equiv_chain_of_thought'; set the scenario's metric in helm.metrics")):
        read_run(tmp_path, files, run, {"math": {"name": "math_equiv_chain_of_thought"}})
    with pytest.raises(InputError, match=re.escape(
            "has any of the metrics ['final_number_exact_match', 'exact_match_indicator']")):
        read_run(tmp_path, generation_run(tmp_path, {"f1_score": 1.0}), "gsm:model=acme_m")


def test_a_run_that_cannot_be_read_is_left_out_with_a_warning_under_skip(tmp_path, caplog):
    # HELM.md: a broken run must be reported, not crash the workflow. helm.on_missing: skip
    # left out runs that failed to download but stopped on one that downloaded and is broken.
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.mkdir()
    bad.mkdir()
    files = generation_run(good, {"f1_score": 1.0})
    generation_run(bad, {"f1_score": 1.0})
    (bad / "display_predictions.json").write_text(json.dumps([{"instance_id": "id1",
                                                               "stats": None}]))
    downloads = pl.DataFrame([
        {"run": f"narrative_qa:model={name}", "suite": "v", "status": "ok",
         "folder": str(folder), "files": files, "reason": ""}
        for name, folder in (("acme_m", good), ("acme_bad", bad))])
    with pytest.raises(InputError, match="a prediction is not in HELM.s format"):
        dataset_table("narrative_qa", downloads, on_missing="fail")
    table, _, lines = dataset_table("narrative_qa", downloads, on_missing="skip")
    assert table["model"].to_list() == ["acme/m"]
    assert any(line.startswith("narrative_qa:model=acme_bad: skipped (unreadable: ")
               for line in lines)
    assert "HELM run narrative_qa:model=acme_bad cannot be read, left out" in caplog.text
    with pytest.raises(InputError, match="none of its 1 HELM runs was downloaded and readable"):
        dataset_table("narrative_qa", downloads.tail(1), on_missing="skip")
