"""Checking a run's config against config.schema.yaml with one short line per problem.

Snakemake's `validate` stops at the first problem and prints the whole (sub)schema after it,
several hundred lines for a misspelt top-level key, without naming the config files. The
Snakefile calls `validate` first (it fills in the schema's defaults) and, where it fails, the
check here, which reports every problem as `key.path: what is wrong`. Before either, the
values of --config are given the types a config file would give them (`command_line_typed`).
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, validators

from llmrouter.artifacts import InputError


def _with_defaults(validator_class: type) -> type:
    """The validator filling in `default`s as it goes, as Snakemake's validate does, so that a
    key required but given a default is not reported here while validate accepts it."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema) -> Iterator:
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if "default" in subschema:
                    instance.setdefault(name, copy.deepcopy(subschema["default"]))
        yield from validate_properties(validator, properties, instance, schema)

    return validators.extend(validator_class, {"properties": set_defaults})


def _is_whole(checker, instance: Any) -> bool:
    """An int: JSON Schema also counts 5.0, which then fails in range() or as a seed."""
    return isinstance(instance, int) and not isinstance(instance, bool)


def _is_finite(checker, instance: Any) -> bool:
    """A number other than NaN and infinity: minimum/maximum let NaN through (every
    comparison with it is false), and YAML reads .nan and .inf."""
    return (isinstance(instance, (int, float)) and not isinstance(instance, bool)
            and math.isfinite(instance))


# Stricter than Snakemake's validate, which runs first and fills in the defaults.
_STRICT = validators.extend(
    Draft202012Validator,
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine_many(
        {"integer": _is_whole, "number": _is_finite}),
)


def _message(error: Any) -> str:
    """jsonschema's message, said plainly for the two cases the strict types add."""
    value = error.instance
    if isinstance(value, float) and not math.isfinite(value):
        return f"{value} is not a finite number"
    if error.validator == "type" and isinstance(value, float) and value.is_integer():
        return f"{value} is not an integer (write {int(value)})"
    return error.message


# Folders that may not be the working directory, with what they hold and their default: the
# rules' outputs would read ./scores/..., which no target named on the command line matches
# (Snakemake normalises targets, not output patterns). `.`, `./` and `out/..` all name it.
FOLDER_KEYS = {"results": ("the outputs", "results"),
               "resources_dir": ("downloads and caches", "resources")}


def _folder_errors(config: dict) -> Iterator[tuple[list[str], str]]:
    """(key path, message) of each FOLDER_KEYS folder that normalises to the working
    directory."""
    for key, (what, default) in FOLDER_KEYS.items():
        value = config.get(key)
        if isinstance(value, str) and value and os.path.normpath(value) == ".":
            yield [key], (f"{value!r} is the working directory; give {what} a folder of their "
                          f"own (e.g. {default})")


def _offending_paths(error: Any) -> list[list[str]]:
    """The key paths of what is wrong: the path reported, but for keys the schema does not
    know (reported at the section holding them) each key's own path."""
    path = [str(p) for p in error.absolute_path]
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = error.schema.get("properties", {})
        unknown = [[*path, str(key)] for key in error.instance if key not in known]
        if unknown:
            return unknown
    return [path]


Problem = tuple[list[str], list[list[str]], str]  # path reported, offending paths, message


def _problems(config: dict, schema: dict) -> list[Problem]:
    """Every violation as a Problem, sorted by the path reported; see `schema_errors`."""
    validator = _with_defaults(_STRICT)(schema)
    problems = [([str(p) for p in error.absolute_path], _offending_paths(error),
                 _message(error))
                for error in validator.iter_errors(copy.deepcopy(config))]
    problems += [(path, [path], message) for path, message in _folder_errors(config)]
    return sorted(problems, key=lambda problem: problem[0])


def _line(path: list[str], message: str) -> str:
    """One problem as `key.path: message`."""
    return f"{'.'.join(path) or '(top level)'}: {message}"


def _credit(offending: list[list[str]], command_line: Mapping) -> str:
    """What a problem's line adds when --config gave its value: " (set by --config)" when it
    gave every offending one, the keys it gave when only some (unknown keys of one section may
    come from both), else nothing. A key the config lacks (`required`) is credited to no one."""
    given = [path for path in offending if set_by_command_line(path, command_line)]
    if not given:
        return ""
    if len(given) == len(offending):
        return " (set by --config)"
    return f" ({', '.join(repr(path[-1]) for path in given)} set by --config)"


def schema_errors(config: dict, schema: dict) -> list[str]:
    """Every violation of `schema` by `config` as `key.path: message`, sorted by key path
    ("(top level)" for the config itself). `config` is not modified.

    Stricter than JSON Schema in three ways: an integer is not a float (5.0), a number is
    finite (not NaN or infinity), and no FOLDER_KEYS folder is the working directory."""
    return [_line(path, message) for path, _, message in _problems(config, schema)]


def set_by_command_line(path: list[str], command_line: Mapping) -> bool:
    """Whether --config (`command_line`, as Snakemake parsed it) set the value at key path
    `path`: the key itself, or a list or value it gave a section holding it. The config itself
    (an empty path) is never credited to it."""
    node: Any = command_line
    for key in path:
        if not isinstance(node, Mapping):
            return True
        if key not in node:
            return False
        node = node[key]
    return bool(path)


def _string_leaves(value: Any, path: tuple = ()) -> Iterator[tuple[tuple, str]]:
    """(key path, value) of every string inside nested dicts and lists."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _string_leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _string_leaves(item, (*path, index))
    elif isinstance(value, str):
        yield path, value


def _at(tree: Any, path: tuple) -> Any:
    """The value at key path `path` of nested dicts and lists."""
    for key in path:
        tree = tree[key]
    return tree


def command_line_typed(config: dict, command_line: Mapping, schema: dict) -> dict:
    """`config` (a copy) with each string that `command_line` set replaced by its YAML value
    wherever the schema takes that value at its place or takes neither.

    Snakemake reads a nested --config value such as knn='{"k": 10}' with YAML's BaseLoader, so
    every value inside it is a string ('10'; snakemake/snakemake#2099) and fails a schema that
    wants a number. Read again here, it means what the same text means in a config file: k = 10,
    bandwidth 0.1, top null; k = 0 is then reported as below the minimum, not as a string. A
    string the schema takes as given but not as its YAML value ("true" where a string is wanted)
    is left as given, and so is every value of a config file."""
    typed = copy.deepcopy(config)
    validator = Draft202012Validator(schema)
    for path, text in _string_leaves(command_line):
        try:
            if not path or _at(typed, path) != text:
                continue
            value = yaml.safe_load(text)
        except (KeyError, IndexError, TypeError, yaml.YAMLError):
            continue
        if isinstance(value, (str, dict, list)):
            continue
        trial = copy.deepcopy(typed)
        _at(trial, path[:-1])[path[-1]] = value
        # A value wrong either way is reported typed: "0 is less than the minimum of 1".
        if not _errors_at(validator, trial, path) or _errors_at(validator, typed, path):
            typed = trial
    return typed


def _errors_at(validator: Draft202012Validator, config: dict, path: tuple) -> bool:
    """Whether `config` breaks the schema at key path `path` or below it."""
    return any(tuple(error.absolute_path)[:len(path)] == path
               for error in validator.iter_errors(config))


def keys_sorted(value: Any) -> Any:
    """`value` with the keys of every dict in it sorted (lists keep their order).

    Snakemake compares a job's params with the last run's by their repr, so a section passed
    as one param (`distances`, `embedding`) must print the same for the same values. Its order
    would otherwise depend on where the keys were set: a key given by --config comes before
    the schema's defaults, which validate appends."""
    if isinstance(value, dict):
        return {key: keys_sorted(value[key]) for key in sorted(value, key=str)}
    if isinstance(value, list):
        return [keys_sorted(item) for item in value]
    return value


def config_sources(files: list, command_line: list, replaced: bool) -> list[str]:
    """The config files a run's config comes from, for messages: Snakemake's list of every file
    read (`files`), less the workflow's own when --replace-workflow-config (`replaced`)
    discarded them for the `command_line` ones."""
    kept = [f for f in files if not replaced or f in command_line]
    return [str(f) for f in kept]


def read_schema(schema_path: str | Path) -> dict:
    """The schema file as a dict (libyaml's loader where present: 2 ms instead of 16, and the
    Snakefile reads it on every start)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(schema_path) as handle:
        return yaml.load(handle, Loader=loader)  # noqa: S506 (a safe loader)


def check_config(config: dict, schema: dict, schema_name: str, config_files: list[str],
                 command_line: Mapping | None = None) -> None:
    """Raise InputError listing `schema_errors`, naming the config files the run merged, the
    schema file (`schema_name`) and, where --config gave the value (`command_line`), that:
    a problem there is not in any of the files."""
    problems = _problems(config, schema)
    if not problems:
        return
    command_line = command_line or {}
    sources = [str(f) for f in config_files] or ["no config file"]
    if command_line:
        sources.append("--config")
    lines = [_line(path, message) + _credit(offending, command_line)
             for path, offending, message in problems]
    raise InputError(f"config ({', '.join(sources)}) does not match {schema_name}:\n"
                     + "\n".join(f"  {line}" for line in lines))
