"""HELM run names, index files and run selection.

A run name is `<scenario>[,<arg>=<value>...]:<arg>=<value>,...`, e.g.
`mmlu:subject=anatomy,method=multiple_choice_joint,model=openai_gpt2`. HELM writes a model id
`org/name` as `org_name` inside run names.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from llmrouter.artifacts import InputError

# Run-name arguments that differ between models of one scenario (or only say how the run was
# augmented), so they must not split one dataset into several.
MODEL_ARGS = frozenset({"model", "model_deployment", "data_augmentation", "groups", "eval_split",
                        "global_prefix", "stop", "tokenizer"})

# Which per-instance metric means "correct" in each scenario (../shared/HELM.md), with the
# threshold on the per-instance mean over train trials. Binary metrics count 1.0 as correct.
DEFAULT_METRICS: dict[str, dict[str, float | str]] = {
    **{s: {"name": "exact_match", "threshold": 0.5}
       for s in ("mmlu", "commonsense", "hellaswag", "openbookqa")},
    **{s: {"name": "quasi_exact_match", "threshold": 0.5}
       for s in ("raft", "boolq", "imdb", "civil_comments", "babi_qa", "legalbench", "med_qa",
                 "truthful_qa", "entity_matching", "lsat_qa", "legal_support", "bbq")},
    "gsm": {"name": "final_number_exact_match", "threshold": 0.5},
    "math": {"name": "math_equiv_chain_of_thought", "threshold": 0.5},
    **{s: {"name": "f1_score", "threshold": 0.5} for s in ("narrative_qa", "natural_qa", "quac")},
    "wmt_14": {"name": "bleu_4", "threshold": 0.3},
    **{s: {"name": "rouge_2", "threshold": 0.15}
       for s in ("summarization_cnndm", "summarization_xsum")},
}
FALLBACK_METRIC = {"name": "exact_match", "threshold": 0.5}
# Metrics a run of the scenario may compute instead of the default name, in order: HELM's
# run_specs.py gives math `math_equiv_chain_of_thought` only with use_chain_of_thought=True,
# else `math_equiv`; Classic's gsm runs (suite v0.3.0) compute `exact_match_indicator`, later
# ones also `final_number_exact_match`. Each is 0/1 per instance, like the default.
ALTERNATIVE_METRICS: dict[str, tuple[str, ...]] = {
    "math": ("math_equiv",),
    "gsm": ("exact_match_indicator",),
}

RUN_LIST_COLUMNS = ["run", "suite", "scenario", "dataset", "model_slug"]

# Scenarios whose instance texts HELM publishes encrypted (encryption_data.json): no text to
# embed, so their runs are never selected.
ENCRYPTED_SCENARIOS = frozenset({"gpqa", "ewok"})


@dataclass(frozen=True)
class RunName:
    """A parsed run name: scenario and its arguments in written order."""

    scenario: str
    args: tuple[tuple[str, str], ...]

    def get(self, key: str, default: str | None = None) -> str | None:
        """The value of argument `key`, or `default`."""
        return dict(self.args).get(key, default)


def parse_run_name(name: str) -> RunName:
    """Split a run name into its scenario and `key=value` arguments.

    Both `mmlu:subject=x,model=y` and `legal_support,method=z:model=y` occur; every
    `key=value` piece before or after the colon is an argument. The scenario itself may hold
    a `=` (Classic's `dyck_language_np=3`).
    """
    head, colon, tail = name.partition(":")
    head_pieces = head.split(",")
    if not colon or not head_pieces[0]:
        raise InputError(f"{name!r}: not a HELM run name (expected '<scenario>:<key>=<value>,...')")
    args = []
    for piece in [*head_pieces[1:], *tail.split(",")]:
        key, sep, value = piece.partition("=")
        if not sep:
            raise InputError(f"{name!r}: argument {piece!r} is not key=value")
        args.append((key, value))
    return RunName(scenario=head_pieces[0], args=tuple(args))


def slug(text: str) -> str:
    """A filename-safe name: runs of characters other than [A-Za-z0-9.-] become one '_'."""
    return re.sub(r"[^A-Za-z0-9.\-]+", "_", text).strip("_")


def dataset_name(run: str) -> str:
    """The dataset a run belongs to, the same for every model of a scenario.

    MMLU runs are named by their subject (`anatomy`), as in the helm_mmlu table; other runs by
    a slug of the scenario and its non-model arguments (`babi_qa:task=15,model=m` ->
    `babi_qa_task_15`).
    """
    parsed = parse_run_name(run)
    if parsed.scenario == "mmlu" and parsed.get("subject"):
        return slug(parsed.get("subject"))
    kept = [f"{k}_{v}" for k, v in parsed.args if k not in MODEL_ARGS]
    return slug("_".join([parsed.scenario, *kept]))


def model_slug(model_id: str) -> str:
    """How a HELM model id `org/name` appears in run names (`org_name`)."""
    return model_id.replace("/", "_")


def metric_for(scenario: str, overrides: dict | None = None) -> dict[str, float | str]:
    """The metric name and threshold of a scenario: config overrides, then HELM.md defaults."""
    chosen = {**FALLBACK_METRIC, **DEFAULT_METRICS.get(scenario, {})}
    return {**chosen, **(overrides or {}).get(scenario, {})}


def metric_candidates(scenario: str, overrides: dict | None = None) -> tuple[str, ...]:
    """Metric names that mean "correct" in a scenario's runs, in order: a run is scored with
    the first one it has. A name set in helm.metrics is the only candidate."""
    if "name" in (overrides or {}).get(scenario, {}):
        return (str(overrides[scenario]["name"]),)
    return (str(metric_for(scenario)["name"]), *ALTERNATIVE_METRICS.get(scenario, ()))


def check_metric_scenarios(metrics: dict | None, index: dict[str, str]) -> None:
    """Raise InputError for helm.metrics keys that are the scenario of no run in `index`.

    metric_for looks a scenario up by its exact name, so a misspelt key (`MMLU`, a run name)
    would leave the default metric and threshold in place without a word. The whole index
    counts, not only the selected runs: a shared config may set metrics for scenarios that
    helm.runs leaves out.
    """
    if not metrics:
        return
    scenarios = set()
    for run in index:
        try:
            scenarios.add(parse_run_name(run).scenario)
        except InputError:
            # Only the selected runs must parse (select_runs says which does not).
            continue
    unknown = [key for key in metrics if key not in scenarios]
    if not unknown:
        return
    known = sorted(scenarios)
    shown = known[:20] + (["..."] if len(known) > 20 else [])
    raise InputError(f"config helm.metrics: unknown scenario(s) {unknown}; the index's "
                     f"scenarios ({len(known)}): {shown}")


def read_index(path: str | Path, suite: str | None = None) -> dict[str, str]:
    """Run name -> suite from a downloaded index file (parse_index of its JSON)."""
    try:
        data = json.loads(Path(path).read_text())
    except ValueError as error:
        raise InputError(f"{path}: not JSON ({error})") from None
    return parse_index(data, str(path), suite)


def parse_index(data: object, source: str, suite: str | None = None) -> dict[str, str]:
    """Run name -> suite from an index file.

    `runs_to_run_suites.json` (a release) is `{run_name: suite}`; a suite's `run_specs.json` is
    a list of run specs with a `name` (every run then belongs to `suite`).
    Raises InputError naming `source` when the file has neither shape.
    """
    if isinstance(data, dict) and all(isinstance(v, str) for v in data.values()):
        return dict(data)
    if isinstance(data, list) and suite is not None:
        names = [spec.get("name") for spec in data if isinstance(spec, dict)]
        if names and all(isinstance(n, str) for n in names):
            return {n: suite for n in names}
    raise InputError(f"{source}: not a HELM index (expected {{run: suite}} or a run_specs list)")


def _check_models(models: list[str], present: set[str]) -> None:
    """Raise InputError for configured model ids that no selected run has.

    present: model slugs of the runs that match helm.runs. A misspelt id would otherwise just
    shrink the pool without a word; `models.include` raises alike (llmrouter/pool.py).
    """
    unknown = [m for m in models if model_slug(m) not in present]
    if not unknown:
        return
    # Run names hold `org_name`; HELM org names have no '_', so the first one is the '/'.
    available = sorted(s.replace("_", "/", 1) for s in present if s)
    shown = available[:10] + (["..."] if len(available) > 10 else [])
    raise InputError(f"config helm.models: model(s) {unknown} match no HELM run selected by "
                     f"helm.runs; available ({len(available)}): {shown}")


def _patterns(patterns: list[str] | None, key: str) -> list[re.Pattern]:
    """Compiled run-name patterns of config `key`; InputError naming a pattern that is not a
    regular expression."""
    compiled = []
    for pattern in patterns or []:
        try:
            compiled.append(re.compile(pattern))
        except re.error as error:
            raise InputError(f"config {key}: {pattern!r} is not a regular expression "
                             f"({error})") from None
    return compiled


def select_runs(index: dict[str, str], include: list[str] | None = None,
                exclude: list[str] | None = None, models: str | list[str] = "all",
                ) -> tuple[pl.DataFrame, dict[str, str]]:
    """Pick runs by name patterns and model, one run per (dataset, model).

    include/exclude: regular expressions searched in run names (include empty: every run).
    models: "all" or HELM model ids (`org/name`).
    Returns the run list (columns RUN_LIST_COLUMNS, sorted by dataset, run) and the runs that
    matched but were left out, with why: encrypted texts, or another run of the same dataset
    and model was kept (the first by name).
    Raises InputError naming `helm.models` for a model that no run matching include/exclude
    has.
    """
    include_re = _patterns(include, "helm.runs.include")
    exclude_re = _patterns(exclude, "helm.runs.exclude")
    wanted = None if models == "all" else {model_slug(m) for m in models}
    rows, left_out = [], {}
    matched = {}
    for run, suite in index.items():
        if include_re and not any(p.search(run) for p in include_re):
            continue
        if any(p.search(run) for p in exclude_re):
            continue
        matched[run] = (suite, parse_run_name(run))
    if wanted is not None:
        _check_models(models, {parsed.get("model", "") for _, parsed in matched.values()})
    for run, (suite, parsed) in matched.items():
        slug_ = parsed.get("model", "")
        if wanted is not None and slug_ not in wanted:
            continue
        if parsed.scenario in ENCRYPTED_SCENARIOS:
            left_out[run] = "encrypted instance texts"
            continue
        rows.append({"run": run, "suite": suite, "scenario": parsed.scenario,
                     "dataset": dataset_name(run), "model_slug": slug_})
    frame = pl.DataFrame(rows, schema={c: pl.String for c in RUN_LIST_COLUMNS})
    frame = frame.sort(["dataset", "model_slug", "run"])
    kept = frame.unique(subset=["dataset", "model_slug"], keep="first", maintain_order=True)
    for run in sorted(set(frame["run"].to_list()) - set(kept["run"].to_list())):
        left_out[run] = "another run of its dataset and model was kept"
    return kept.sort(["dataset", "run"]), left_out
