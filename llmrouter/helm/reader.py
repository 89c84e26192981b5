"""Parsing one HELM run's files into per-instance scores.

instances.json          [{id, split, input: {text}, references: [{output: {text}, tags}],
                          perturbation?}]
display_predictions.json [{instance_id, train_trial_index, stats: {metric: value},
                          perturbation?}]
per_instance_stats.json [{instance_id, train_trial_index, perturbation?,
                          stats: [{name: {name, split, perturbation?}, mean, ...}]}]
scenario_state.json     {request_states: [{instance: <as in instances.json>, ...}]}
"""

from __future__ import annotations

import string

import polars as pl

from llmrouter.artifacts import InputError, check_unicode

EVAL_SPLITS = ("test", "valid")


def instance_text(instance: dict, multiple_choice: bool) -> str:
    """The text a model was asked: the input, plus lettered options for multiple choice.

    Options are written as HELM's multiple_choice_joint prompt shows them
    ("question\\nA. first\\nB. second ...").
    """
    text = field_text(instance["input"]["text"], "input.text")
    references = instance.get("references") or []
    if multiple_choice and references:
        options = [f"{letter}. " + field_text(ref["output"]["text"],
                                               f"references[{i}].output.text")
                   for i, (letter, ref) in enumerate(zip(string.ascii_uppercase, references))]
        text = "\n".join([text, *options])
    return text


# HELM's two files of per-instance results: the metrics its schema shows, and every metric.
DISPLAY_FILE, STATS_FILE = "display_predictions.json", "per_instance_stats.json"


class MetricMissing(InputError):
    """A run's file parses but no unperturbed row of it carries the metric asked for: the run
    may compute another (convert.read_run then tries the next candidate)."""


class NullFieldError(TypeError):
    """A field of a HELM record that is null where a value belongs (format_error names it)."""

    def __init__(self, field: str) -> None:
        super().__init__(f"{field} is null")
        self.field = field


def field_text(value: object, field: str, kinds: tuple[type, ...] = (str,)) -> str:
    """`value` (one of `kinds`) as text; NullFieldError for a null, TypeError for another type.

    str() alone would turn a null into the text "None" (every null id one instance) and a
    record into its repr.
    """
    if value is None:
        raise NullFieldError(field)
    if not isinstance(value, kinds) or isinstance(value, bool):
        raise TypeError(f"{field} is a {type(value).__name__}, not a string")
    return str(value)


def format_error(source: str, what: str, error: Exception) -> InputError:
    """The InputError for a record of a HELM file that is not in HELM's format: a missing
    key or a null field is named as such, any other fault (a list where a record belongs)
    quoted."""
    if isinstance(error, KeyError):
        return InputError(f"{source}: {what} without {error} (not HELM's format)")
    if isinstance(error, NullFieldError):
        return InputError(f"{source}: {what} has {error.field} null (not HELM's format)")
    return InputError(f"{source}: {what} is not in HELM's format ({type(error).__name__}: "
                      f"{error})")


def optional_text(value: object, field: str) -> str | None:
    """A field that may be null (an instance's split), else as field_text."""
    return None if value is None else field_text(value, field)


def build_frame(rows: list[dict], schema: dict, source: str, what: str) -> pl.DataFrame:
    """`rows` as a DataFrame of `schema`; InputError naming `source` for a value that does not
    fit (the readers check each field, so this is the last guard, not the usual message)."""
    try:
        return pl.DataFrame(rows, schema=schema)
    except UnicodeEncodeError as error:
        raise InputError(f"{source}: {what} has text that is not valid Unicode "
                         f"({error.reason})") from None
    except (pl.exceptions.PolarsError, TypeError, ValueError) as error:
        raise format_error(source, what, error) from None


def read_instances(instances: list, source: str, multiple_choice: bool = False) -> pl.DataFrame:
    """Unperturbed instances: instance_id, split, text (one row per HELM instance id).

    `instances` is instances.json's list (or scenario_state's instances); `source` names the
    file in errors.
    """
    if not isinstance(instances, list):
        raise InputError(f"{source}: expected a list of instances")
    rows = []
    try:
        for instance in instances:
            if instance.get("perturbation"):
                continue
            instance_id = field_text(instance["id"], "id", (str, int))
            text = instance_text(instance, multiple_choice)
            check_unicode(text, f"{source}: the text of instance {instance_id!r}")
            rows.append({"instance_id": instance_id,
                         "split": optional_text(instance.get("split"), "split"), "text": text})
    except (KeyError, TypeError, AttributeError) as error:
        raise format_error(source, "an instance", error) from None
    frame = build_frame(rows, {"instance_id": pl.String, "split": pl.String, "text": pl.String},
                        source, "an instance")
    return frame.unique(subset="instance_id", keep="first", maintain_order=True)


def scenario_state_instances(state: dict, source: str) -> list:
    """The instances of scenario_state.json (one per request; repeats per train trial)."""
    try:
        return [request["instance"] for request in state["request_states"]]
    except (KeyError, TypeError) as error:
        raise InputError(f"{source}: no request_states[].instance ({error})") from None


def read_display_predictions(predictions: list, metric: str, source: str) -> pl.DataFrame:
    """Unperturbed per-trial values of `metric`: instance_id, train_trial_index, value.

    Raises InputError when no unperturbed row carries `metric`.
    """
    if not isinstance(predictions, list):
        raise InputError(f"{source}: expected a list of predictions")
    rows = []
    try:
        for row in predictions:
            if row.get("perturbation"):
                continue
            value = row["stats"].get(metric)
            if value is not None:
                rows.append({"instance_id": field_text(row["instance_id"], "instance_id",
                                                       (str, int)),
                             "train_trial_index": int(row.get("train_trial_index", 0)),
                             "value": float(value)})
    except (KeyError, TypeError, AttributeError, ValueError) as error:
        raise format_error(source, "a prediction", error) from None
    if not rows:
        raise MetricMissing(f"{source}: no unperturbed prediction has metric {metric!r}")
    return build_frame(rows, {"instance_id": pl.String, "train_trial_index": pl.Int64,
                              "value": pl.Float64}, source, "a prediction")


def read_per_instance_stats(stats: list, metric: str, source: str) -> pl.DataFrame:
    """Unperturbed per-trial values of `metric`: instance_id, train_trial_index, split, value.

    Uses each stat's `mean` (its `sum / count` when `mean` is absent). Raises InputError when
    no unperturbed row carries `metric`.
    """
    if not isinstance(stats, list):
        raise InputError(f"{source}: expected a list of per-instance stats")
    rows = []
    try:
        for row in stats:
            if row.get("perturbation"):
                continue
            for stat in row["stats"]:
                name = stat["name"]
                if name["name"] != metric or name.get("perturbation") or not stat.get("count"):
                    continue
                mean = stat["mean"] if "mean" in stat else stat["sum"] / stat["count"]
                rows.append({"instance_id": field_text(row["instance_id"], "instance_id",
                                                       (str, int)),
                             "train_trial_index": int(row.get("train_trial_index", 0)),
                             "split": optional_text(name.get("split"), "name.split"),
                             "value": float(mean)})
    except (KeyError, TypeError, AttributeError, ValueError) as error:
        raise format_error(source, "a stat", error) from None
    if not rows:
        raise MetricMissing(f"{source}: no unperturbed per-instance stat {metric!r}")
    return build_frame(rows, {"instance_id": pl.String, "train_trial_index": pl.Int64,
                              "split": pl.String, "value": pl.Float64}, source, "a stat")


def instance_scores(instances: pl.DataFrame, trials: pl.DataFrame) -> pl.DataFrame:
    """Per-instance score on the evaluation split: mean over train trials.

    instances: instance_id, split, text (read_instances); trials: instance_id,
    train_trial_index, value. Keeps the `test` split, or `valid` when a run has no test
    instances. Returns instance_id, text, score, n_trials in instances' order.
    """
    split = next((s for s in EVAL_SPLITS if (instances["split"] == s).any()), None)
    if split is None:
        return pl.DataFrame(schema={"instance_id": pl.String, "text": pl.String,
                                    "score": pl.Float64, "n_trials": pl.UInt32})
    means = trials.group_by("instance_id").agg(score=pl.col("value").mean(),
                                               n_trials=pl.len())
    return (instances.filter(pl.col("split") == split)
            .join(means, on="instance_id", how="inner", maintain_order="left")
            .select("instance_id", "text", "score", "n_trials"))
