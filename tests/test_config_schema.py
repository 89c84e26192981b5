"""The short config check run where Snakemake's validate fails: one line per problem, each naming
its key, and the same verdict as validate on every config the repository ships."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import update_config, validate

from conftest import REPO
from llmrouter.artifacts import InputError
from llmrouter.config_schema import (check_config, command_line_typed, config_sources,
                                     keys_sorted, schema_errors, set_by_command_line)

SCHEMA_PATH = REPO / "config.schema.yaml"
SCHEMA = yaml.safe_load(SCHEMA_PATH.read_text())
BASE = {"source": "table", "table": {"path": "x.parquet"}}


def test_every_problem_is_one_line_naming_its_key():
    config = {**BASE, "knnn": {"k": 3}, "knn": {"k": "five"},
              "evaluation": {"mode": "loose"}, "smoother": {"bandwidth": -0.1}}
    assert schema_errors(config, SCHEMA) == [
        "(top level): Additional properties are not allowed ('knnn' was unexpected)",
        "evaluation.mode: 'loose' is not one of ['strict', 'reference']",
        "knn.k: 'five' is not of type 'integer'",
        "smoother.bandwidth: -0.1 is not valid under any of the given schemas",
    ]


def test_whole_floats_nan_infinity_and_empty_folders_are_problems():
    # JSON Schema (and so Snakemake's validate) takes 5.0 as an integer and NaN as a number
    # within any minimum; they would fail deep in a job (range(5.0)) or silently (g > nan).
    nan, inf = float("nan"), float("inf")
    config = {**BASE, "knn": {"k": 5.0}, "selection": {"threshold": nan},
              "smoother": {"bandwidth": nan}, "distances": {"max_points": inf},
              "cost": {"models": {"a/b": nan}, "epsilons": [0.0, inf]},
              "results": "", "new_tasks": {"folder": "", "files": {"x": ""}},
              "helm": {"project": "", "release": ""}}
    assert schema_errors(config, SCHEMA) == [
        "cost.epsilons.1: inf is not a finite number",
        "cost.models.a/b: nan is not a finite number",
        "distances.max_points: inf is not a finite number",
        "helm.project: '' should be non-empty",
        "helm.release: '' should be non-empty",
        "knn.k: 5.0 is not an integer (write 5)",
        "new_tasks.files.x: '' should be non-empty",
        "new_tasks.folder: '' should be non-empty",
        "results: '' should be non-empty",
        "selection.threshold: nan is not a finite number",
        "smoother.bandwidth: nan is not a finite number",
    ]
    validate(copy.deepcopy({**BASE, "knn": {"k": 5.0}}), str(SCHEMA_PATH))  # why it is needed


def test_a_selection_threshold_no_prediction_exceeds_is_a_problem():
    # Audit: g_m(x) > 1 never holds, so with threshold 1 every S2 was 0 and S3 = 1 - p,
    # presented as each model's expected accuracy.
    assert schema_errors({**BASE, "selection": {"threshold": 1}}, SCHEMA) == [
        "selection.threshold: 1 is greater than or equal to the maximum of 1"]
    assert schema_errors({**BASE, "selection": {"threshold": 0.99}}, SCHEMA) == []


def test_an_embedding_batch_too_large_to_run_is_a_problem():
    # Every batch runs as batch_size rows (topped up): 100,000 rows of 256 tokens would need
    # hundreds of GB, and the job would die of memory rather than say why.
    assert schema_errors({**BASE, "embedding": {"batch_size": 100_000}}, SCHEMA) == [
        "embedding.batch_size: 100000 is greater than the maximum of 1024"]
    assert schema_errors({**BASE, "embedding": {"batch_size": 1024}}, SCHEMA) == []


def test_the_working_directory_as_results_or_resources_is_a_problem():
    # Audit: with `results: .` the outputs read ./scores/..., which no target named on the
    # command line matches; `out/` and `./out` are fine (normalised in rules/common.smk), and
    # `out/..` names the working directory too.
    assert schema_errors({**BASE, "results": ".", "resources_dir": ".//"}, SCHEMA) == [
        "resources_dir: './/' is the working directory; give downloads and caches a folder of "
        "their own (e.g. resources)",
        "results: '.' is the working directory; give the outputs a folder of their own (e.g. "
        "results)"]
    assert schema_errors({**BASE, "results": "out/..", "knn": {"k": "five"}}, SCHEMA) == [
        "knn.k: 'five' is not of type 'integer'",
        "results: 'out/..' is the working directory; give the outputs a folder of their own "
        "(e.g. results)"]
    assert schema_errors({**BASE, "results": "./out", "resources_dir": ".cache"}, SCHEMA) == []
    validate(copy.deepcopy({**BASE, "results": "out/"}), str(SCHEMA_PATH))


def test_repeated_alphas_and_epsilons_are_problems():
    # A repeated alpha ran its variant twice, as two rows of one name in the ablation table.
    config = {**BASE, "ablation": {"alphas": [0.1, 0.04, 0.1]}, "cost": {"epsilons": [0, 0.0]}}
    problems = schema_errors(config, SCHEMA)
    assert [p.split(":")[0] for p in problems] == ["ablation.alphas", "cost.epsilons"]
    assert all("non-unique elements" in p for p in problems), problems
    with pytest.raises(WorkflowError):
        validate(copy.deepcopy(config), str(SCHEMA_PATH))


def test_a_key_required_but_given_a_default_is_not_a_problem():
    # As in Snakemake's validate, a default is filled in where `properties` is met, so before
    # a `required` written after it (config.schema.yaml's order).
    schema = {"type": "object", "properties": {"a": {"type": "integer", "default": 1}},
              "required": ["a"]}
    assert schema_errors({}, schema) == []
    assert schema_errors({"a": "x"}, schema) == ["a: 'x' is not of type 'integer'"]


@pytest.mark.parametrize("name", ["config.yaml", *sorted(
    p.relative_to(REPO).as_posix() for p in (REPO / "config").glob("*.yaml"))])
def test_the_shipped_configs_pass_and_are_left_as_given(name):
    config = yaml.safe_load((REPO / name).read_text())
    given = copy.deepcopy(config)
    assert schema_errors(config, SCHEMA) == []
    assert config == given  # validate, not this check, fills in the defaults
    validate(config, str(SCHEMA_PATH))  # and Snakemake's own check agrees


@pytest.mark.parametrize("bad", [{"knnn": {"k": 3}}, {"knn": {"k": 0}},
                                 {"table": {"path": "x.parquet", "threshold": "half"}},
                                 {"smoother": {"bandwidth": "automatic"}}])
def test_a_bad_config_over_config_yaml_fails_both_checks(bad):
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    update_config(config, {**BASE, **bad})  # as --configfile merges over config.yaml
    assert schema_errors(config, SCHEMA)
    with pytest.raises(WorkflowError):
        validate(config, str(SCHEMA_PATH))


def test_check_config_names_the_files_and_the_schema():
    with pytest.raises(InputError, match=r"config \(my.yaml, config.yaml\) does not match "
                                         r"config.schema.yaml:\n  knn.k: 0 is less than"):
        check_config({**BASE, "knn": {"k": 0}}, SCHEMA, SCHEMA_PATH.name,
                     ["my.yaml", "config.yaml"])
    check_config(BASE, SCHEMA, SCHEMA_PATH.name, ["config.yaml"])


def test_check_config_credits_command_line_values_to_it():
    """A value --config gave is marked as such (it is in none of the files named), down to a
    key the schema does not know; a value of the files is not."""
    config = {**BASE, "knn": {"k": 0, "kk": 1}, "knnn": 3, "selection": {"draws": 0}}
    command_line = {"knn": {"k": "0", "kk": "1"}, "knnn": "3"}
    with pytest.raises(InputError) as raised:
        check_config(config, SCHEMA, SCHEMA_PATH.name, ["config.yaml"], command_line)
    assert str(raised.value).splitlines() == [
        "config (config.yaml, --config) does not match config.schema.yaml:",
        "  (top level): Additional properties are not allowed ('knnn' was unexpected) "
        "(set by --config)",
        "  knn: Additional properties are not allowed ('kk' was unexpected) (set by --config)",
        "  knn.k: 0 is less than the minimum of 1 (set by --config)",
        "  selection.draws: 0 is less than the minimum of 1",
    ]


@pytest.mark.parametrize(("config", "command_line", "expected"), [
    # Unknown keys all from the file, in a section --config also set: not credited.
    ({"knn": {"k": 3, "kk": 1, "kkk": 2}}, {"knn": {"k": "3"}},
     "  knn: Additional properties are not allowed ('kk', 'kkk' were unexpected)"),
    # Two unknown keys, both from --config, at the top level.
    ({"foo": 1, "bar": 2}, {"foo": "1", "bar": "2"},
     "  (top level): Additional properties are not allowed ('bar', 'foo' were unexpected) "
     "(set by --config)"),
    # One from each: the one --config gave is named.
    ({"knn": {"kk": 1, "kkk": 2}}, {"knn": {"kkk": "2"}},
     "  knn: Additional properties are not allowed ('kk', 'kkk' were unexpected) "
     "('kkk' set by --config)"),
])
def test_unknown_keys_are_credited_to_where_they_came_from(config, command_line, expected):
    with pytest.raises(InputError) as raised:
        check_config({**BASE, **config}, SCHEMA, SCHEMA_PATH.name, ["config.yaml"],
                     command_line)
    assert str(raised.value).splitlines()[1:] == [expected]


@pytest.mark.parametrize(("path", "command_line", "expected"), [
    (["knn", "k"], {"knn": {"k": "3"}}, True),
    (["knn", "k"], {"knn": {"block_size": "3"}}, False),
    (["datasets", "include", "0"], {"datasets": {"include": ["x"]}}, True),
    (["knn"], {"knn": "3"}, True),
    ([], {"knn": {"k": "3"}}, False),
    (["knn", "k"], {}, False),
])
def test_set_by_command_line(path, command_line, expected):
    assert set_by_command_line(path, command_line) is expected


def test_config_sources_leave_out_a_replaced_workflow_config():
    mine = Path("/runs/mine.yaml")
    assert config_sources([mine, "config.yaml"], [mine], replaced=False) == [
        "/runs/mine.yaml", "config.yaml"]
    assert config_sources([mine, "config.yaml"], [mine], replaced=True) == ["/runs/mine.yaml"]


def test_command_line_values_get_the_types_a_config_file_gives_them():
    # What Snakemake's --config makes of knn='{"k": 10}' etc.: every nested value a string.
    given = {"knn": {"k": "10"}, "smoother": {"bandwidth": "0.05", "descriptor": "ot"},
             "ablation": {"alphas": ["0.04", "0.1"]}, "new_tasks": {"top": "null"},
             "helm": {"release": "null", "legacy_root": "true"},
             "cost": {"models": {"a/b": "1.5"}, "unit": "10"}, "models": {"include": ["true"]}}
    config = copy.deepcopy({**BASE, **given})
    typed = command_line_typed(config, given, SCHEMA)
    assert config == {**BASE, **given}  # not modified
    assert typed == {**BASE, "knn": {"k": 10}, "smoother": {"bandwidth": 0.05, "descriptor": "ot"},
                     "ablation": {"alphas": [0.04, 0.1]}, "new_tasks": {"top": None},
                     "helm": {"release": None, "legacy_root": True},
                     "cost": {"models": {"a/b": 1.5}, "unit": "10"},
                     "models": {"include": ["true"]}}
    assert schema_errors(typed, SCHEMA) == []


def test_a_bad_command_line_value_is_reported_as_its_yaml_value():
    given = {"knn": {"k": "0"}, "smoother": {"bandwidth": "automatic"},
             "table": {"threshold": "half"}}
    config = {**BASE, **given, "table": {"path": "x.parquet", "threshold": "half"}}
    assert schema_errors(command_line_typed(config, given, SCHEMA), SCHEMA) == [
        "knn.k: 0 is less than the minimum of 1",
        "smoother.bandwidth: 'automatic' is not valid under any of the given schemas",
        "table.threshold: 'half' is not of type 'number'",
    ]


def test_a_config_file_string_is_left_as_written():
    # knn.k: "10" in a file is quoted on purpose; only --config loses the types.
    config = {**BASE, "knn": {"k": "10"}, "smoother": {"bandwidth": "0.05"}}
    typed = command_line_typed(config, {"smoother": {"bandwidth": "0.05"}}, SCHEMA)
    assert typed["knn"] == {"k": "10"} and typed["smoother"] == {"bandwidth": 0.05}
    # Nor is a path where the config does not hold the --config string.
    assert command_line_typed({**BASE, "knn": {"k": "five"}}, {"knn": {"k": "10"}},
                              SCHEMA)["knn"] == {"k": "five"}


def test_keys_sorted_makes_a_section_print_the_same_whatever_set_its_keys_first():
    """Snakemake compares params by repr: the same settings set in another order must not
    rerun a job."""
    from_command_line = {"distances": {"reg": 0.5, "max_points": 500, "method": "emd"},
                         "ablation": {"alphas": [0.1, 0.04]}}
    from_file = {"ablation": {"alphas": [0.1, 0.04]},
                 "distances": {"method": "emd", "max_points": 500, "reg": 0.5}}
    assert repr(keys_sorted(from_command_line)["distances"]) == repr(
        keys_sorted(from_file)["distances"])
    assert list(keys_sorted(from_file)["distances"]) == ["max_points", "method", "reg"]
    # Lists are values, not sets: their order is kept.
    assert keys_sorted(from_file)["ablation"]["alphas"] == [0.1, 0.04]
    # A key YAML reads as a number (a model named 7) sorts by its text, beside the names.
    assert list(keys_sorted({"b": 1, 7: 3, "a": 2})) == [7, "a", "b"]
