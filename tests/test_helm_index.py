"""HELM run names, dataset names, metrics and run selection (HELM Classic's real index)."""

from __future__ import annotations

import json

import pytest

from conftest import SHARED, require_shared
from llmrouter.artifacts import InputError
from llmrouter.helm.index import (check_metric_scenarios, dataset_name, metric_candidates,
                                  metric_for, parse_index, parse_run_name, read_index,
                                  select_runs)

CLASSIC_INDEX = SHARED / "helm_fixtures" / "helm_data_downloader" / "runs_to_runsuites.json"


@pytest.mark.parametrize("run, dataset", [
    ("babi_qa:task=15,model=AlephAlpha_luminous-base", "babi_qa_task_15"),
    ("mmlu:subject=anatomy,method=multiple_choice_joint,model=openai_gpt-4o-2024-05-13,"
     "eval_split=test,groups=mmlu_anatomy", "anatomy"),
    ("boolq:model=together_bloom,data_augmentation=canonical", "boolq"),
    ("legal_support,method=multiple_choice_joint:model=openai_ada",
     "legal_support_method_multiple_choice_joint"),
    ("dyck_language_np=3:model=openai_ada", "dyck_language_np_3"),
    ("raft:subset=ade_corpus_v2,model=meta_llama-2-7b,data_augmentation=canonical",
     "raft_subset_ade_corpus_v2"),
])
def test_dataset_names(run, dataset):
    assert dataset_name(run) == dataset


def test_parse_run_name():
    parsed = parse_run_name("legal_support,method=multiple_choice_joint:model=openai_ada")
    assert parsed.scenario == "legal_support"
    assert parsed.get("method") == "multiple_choice_joint"
    assert parsed.get("model") == "openai_ada"
    with pytest.raises(InputError, match="not a HELM run name"):
        parse_run_name("no_colon_here")


def test_metrics_defaults_and_overrides():
    assert metric_for("mmlu") == {"name": "exact_match", "threshold": 0.5}
    assert metric_for("babi_qa")["name"] == "quasi_exact_match"
    assert metric_for("narrative_qa", {"narrative_qa": {"threshold": 0.3}}) == {
        "name": "f1_score", "threshold": 0.3}


def test_metric_candidates_of_a_scenario():
    assert metric_candidates("mmlu") == ("exact_match",)
    assert metric_candidates("math") == ("math_equiv_chain_of_thought", "math_equiv")
    assert metric_candidates("gsm", {"gsm": {"threshold": 0.9}}) == (
        "final_number_exact_match", "exact_match_indicator")
    assert metric_candidates("gsm", {"gsm": {"name": "f1_score"}}) == ("f1_score",)


def test_metrics_of_no_scenario_in_the_index_are_an_error():
    index = {"mmlu:subject=anatomy,method=multiple_choice_joint,model=openai_ada": "v1",
             "boolq:model=openai_ada": "v1"}
    check_metric_scenarios(None, index)
    # Every scenario of the index counts, selected or not (a config may be shared).
    check_metric_scenarios({"mmlu": {"threshold": 0.6}, "boolq": {"name": "exact_match"}},
                           index)
    with pytest.raises(InputError) as error:
        check_metric_scenarios({"MMLU": {"threshold": 0.6}, "mmlu:subject=anatomy": {},
                                "boolq": {}}, index)
    assert str(error.value) == ("config helm.metrics: unknown scenario(s) ['MMLU', "
                                "'mmlu:subject=anatomy']; the index's scenarios (2): "
                                "['boolq', 'mmlu']")


def test_unknown_metric_scenarios_list_at_most_20_known_ones():
    index = {f"s{i:02d}:model=m": "v1" for i in range(30)}
    with pytest.raises(InputError) as error:
        check_metric_scenarios({"nope": {}}, index)
    assert str(error.value).endswith("the index's scenarios (30): "
                                     f"{[f's{i:02d}' for i in range(20)] + ['...']}")


def test_parse_index_shapes():
    assert parse_index({"a:model=x": "v1"}, "f") == {"a:model=x": "v1"}
    assert parse_index([{"name": "a:model=x"}], "f", suite="v0.2.4") == {"a:model=x": "v0.2.4"}
    with pytest.raises(InputError, match="idx.json: not a HELM index"):
        parse_index([1, 2], "idx.json")


def test_select_classic_runs():
    index = parse_index(json.loads(require_shared(CLASSIC_INDEX).read_text()), "classic")
    assert len(index) == 8526
    runs, dropped = select_runs(index, include=[r"^babi_qa:", r"^boolq:"],
                                exclude=[r"groups=ablation"],
                                models=["meta/llama-2-7b", "AlephAlpha/luminous-base"])
    assert set(runs["model_slug"]) == {"meta_llama-2-7b", "AlephAlpha_luminous-base"}
    assert set(runs["dataset"]) == {"boolq", "boolq_only_contrast_True", "babi_qa_task_15",
                                    "babi_qa_task_19", "babi_qa_task_3", "babi_qa_task_all"}
    # One run per dataset and model: nothing to drop in this selection.
    assert runs.group_by("dataset", "model_slug").len()["len"].max() == 1
    assert dropped == {}
    assert runs.filter(run="babi_qa:task=15,model=AlephAlpha_luminous-base")["suite"].item() \
        == "v0.3.0"


def test_one_run_per_dataset_and_model_and_no_encrypted_texts():
    index = {"gpqa:subset=main,model=openai_gpt2": "v1",
             "bbq:subject=all,method=multiple_choice_joint,model=openai_ada": "v1",
             "bbq:subject=all,method=multiple_choice_joint,model=openai_ada,"
             "groups=ablation_multiple_choice": "v1"}
    runs, left_out = select_runs(index)
    assert runs["run"].to_list() == [
        "bbq:subject=all,method=multiple_choice_joint,model=openai_ada"]
    assert left_out == {
        "gpqa:subset=main,model=openai_gpt2": "encrypted instance texts",
        "bbq:subject=all,method=multiple_choice_joint,model=openai_ada,"
        "groups=ablation_multiple_choice": "another run of its dataset and model was kept"}


def test_configured_models_without_a_run_are_an_error():
    index = {"boolq:model=openai_ada": "v1", "boolq:model=meta_llama-2-7b": "v1",
             "imdb:model=together_bloom": "v1"}
    runs, _ = select_runs(index, models=["openai/ada"])
    assert runs["model_slug"].to_list() == ["openai_ada"]
    with pytest.raises(InputError) as error:
        select_runs(index, models=["openai/ada", "openai/adaa", "acme/none"])
    message = str(error.value)
    assert "helm.models" in message
    assert "['openai/adaa', 'acme/none']" in message
    assert "meta/llama-2-7b" in message and "openai/ada" in message
    # A model whose only runs helm.runs leaves out matches no selected run either.
    with pytest.raises(InputError, match=r"helm\.models.*together/bloom"):
        select_runs(index, include=[r"^boolq:"], models=["together/bloom"])


def test_a_run_pattern_that_is_not_a_regex_names_the_key():
    with pytest.raises(InputError, match=r"helm\.runs\.exclude: '\[unclosed' is not a regular"):
        select_runs({"boolq:model=openai_ada": "v1"}, exclude=["[unclosed"])


def test_an_index_file_is_read_or_named(tmp_path):
    index = tmp_path / "runs_to_run_suites.json"
    index.write_text('{"mmlu:subject=anatomy,model=a_b": "v1"}')
    assert read_index(index) == {"mmlu:subject=anatomy,model=a_b": "v1"}
    index.write_text('{"mmlu:subject=anatomy,model=a_b": ')
    with pytest.raises(InputError, match="runs_to_run_suites.json: not JSON"):
        read_index(index)
