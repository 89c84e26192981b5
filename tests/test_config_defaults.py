"""The config schema is where the workflow's defaults live (validate fills them in); the
library's own defaults, used by direct callers, must say the same."""

from __future__ import annotations

import dataclasses
import inspect

import pytest
import yaml
from snakemake.utils import validate

from conftest import REPO
from llmrouter.bandwidth import DEFAULT_GRID
from llmrouter.cost import DEFAULT_EPSILONS
from llmrouter.embedding import EmbeddingSettings
from llmrouter.helm.convert import dataset_table
from llmrouter.routing import RoutingParams
from llmrouter.smoother import configured_bandwidth

SCHEMA = REPO / "config.schema.yaml"
# RoutingParams field -> (config section, key)
ROUTING_KEYS = {
    "k": ("knn", "k"), "descriptor_k": ("smoother", "descriptor_k"),
    "threshold": ("selection", "threshold"), "bandwidth": ("smoother", "bandwidth"),
    "fallback_share": ("selection", "fallback_share"), "draws": ("selection", "draws"),
    "seed": ("selection", "seed"), "mode": ("evaluation", "mode"),
    "descriptor": ("smoother", "descriptor"),
}


@pytest.fixture(scope="module")
def defaults() -> dict:
    config = {"source": "table", "table": {"path": "x.parquet"}}
    validate(config, str(SCHEMA))
    return config


def test_routing_defaults_are_the_schema_defaults(defaults):
    assert {f.name for f in dataclasses.fields(RoutingParams)} == set(ROUTING_KEYS)
    for field, (section, key) in ROUTING_KEYS.items():
        value = defaults[section][key]
        if field == "bandwidth":  # unset: the descriptor's own (the paper's with knn)
            value = configured_bandwidth(value, defaults["smoother"]["descriptor"])
        assert getattr(RoutingParams, field) == value, field


def test_other_library_defaults_are_the_schema_defaults(defaults):
    assert tuple(defaults["cost"]["epsilons"]) == DEFAULT_EPSILONS
    assert defaults["smoother"]["bandwidth_grid"] == []  # empty: the library's DEFAULT_GRID
    assert len(DEFAULT_GRID) > 1
    embedding = EmbeddingSettings()
    for key in ("model", "batch_size", "max_seq_length"):
        assert getattr(embedding, key) == defaults["embedding"][key], key
    # Deliberately different (EmbeddingSettings' docstring): float32 for library callers.
    assert defaults["embedding"]["precision"] == "auto"
    on_missing = inspect.signature(dataset_table).parameters["on_missing"].default
    assert on_missing == defaults["helm"]["on_missing"]


def test_every_schema_key_is_described():
    schema = yaml.safe_load(SCHEMA.read_text())
    missing = []

    def walk(node: dict, path: str) -> None:
        for key, sub in node.get("properties", {}).items():
            if "description" not in sub:
                missing.append(f"{path}{key}")
            walk(sub, f"{path}{key}.")
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            walk(extra, f"{path}*.")

    walk(schema, "")
    assert missing == []


def test_a_table_source_needs_its_table():
    with pytest.raises(Exception, match="'table' is a required property"):
        validate({"source": "table"}, str(SCHEMA))
