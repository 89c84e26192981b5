"""Checking a run's config against config.schema.yaml with one short line per problem.

Snakemake's `validate` stops at the first problem and prints the whole (sub)schema after it,
several hundred lines for a misspelt top-level key, without naming the config files. The
Snakefile calls `validate` first (it fills in the schema's defaults) and, where it fails, the
check here, which reports every problem as `key.path: what is wrong`.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

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


def schema_errors(config: dict, schema: dict) -> list[str]:
    """Every violation of `schema` by `config` as `key.path: message`, sorted by key path
    ("(top level)" for the config itself). `config` is not modified."""
    validator = _with_defaults(Draft202012Validator)(schema)
    errors = validator.iter_errors(copy.deepcopy(config))
    lines = []
    for error in sorted(errors, key=lambda e: [str(p) for p in e.absolute_path]):
        where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        lines.append(f"{where}: {error.message}")
    return lines


def config_sources(files: list, command_line: list, replaced: bool) -> list[str]:
    """The config files a run's config comes from, for messages: Snakemake's list of every file
    read (`files`), less the workflow's own when --replace-workflow-config (`replaced`)
    discarded them for the `command_line` ones."""
    kept = [f for f in files if not replaced or f in command_line]
    return [str(f) for f in kept]


def check_config(config: dict, schema_path: str | Path, config_files: list[str]) -> None:
    """Raise InputError listing `schema_errors`, naming the config files the run merged."""
    with open(schema_path) as handle:
        schema = yaml.safe_load(handle)
    lines = schema_errors(config, schema)
    if lines:
        files = ", ".join(str(f) for f in config_files) or "no config file"
        raise InputError(f"config ({files}) does not match {Path(schema_path).name}:\n"
                         + "\n".join(f"  {line}" for line in lines))
