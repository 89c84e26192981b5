"""A user's new task: a file of prompts read into one table.

A task file is `.jsonl`, `.csv` or `.txt`; the task's name is its file name without the suffix
(`new_tasks.folder`) or its key in `new_tasks.files`:
- .jsonl: one JSON object per line with a `text` field;
- .csv: a header row with a `text` column;
- .txt: one prompt per non-empty line (no other fields).
Optional fields (.jsonl / .csv):
- `instance_id` (or `id`): the prompt's id, else `<name>-<i>` for the i-th row read (from 1;
  blank lines are not rows);
- `label`: the prompt's reference answer, kept in results/tasks/<name>.parquet for the user and
  never used for scoring: without a model's output, an answer says nothing about which model
  is right;
- per-model correctness: a column named exactly as a benchmark model id (e.g.
  `meta/llama-2-70b`) holding 0/1 or true/false (empty where unknown). The ranking then shows
  each such model's true accuracy on the task next to its estimate.
A field named like a model id (holding '/') whose values are not 0/1 or true/false is an
error; any other field is dropped (and the job's log says which).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import polars as pl

from llmrouter.artifacts import InputError, check_not_wide_text, check_unicode
from llmrouter.benchmark import MAX_NAME_CHARS, case_clashes

TASK_SUFFIXES = (".jsonl", ".csv", ".txt")
# Fields with a fixed meaning; every other 0/1 field is a model's correctness.
ID_FIELDS = ("instance_id", "id")
LABEL_FIELD = "label"
TEXT_FIELD = "text"
# Read as written (never numbers, never a model's correctness).
OWN_FIELDS = (TEXT_FIELD, LABEL_FIELD, *ID_FIELDS)
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# Model ids read organisation/model (meta/llama-2-70b): a field holding this is taken as one.
MODEL_ID_MARK = "/"


def check_task_name(name: str, source: str | Path) -> str:
    """Return `name` if usable as a task name (it names output files), else raise InputError
    naming `source` (the file or config key the name came from)."""
    if not NAME_PATTERN.match(name):
        raise InputError(f"{source}: task name {name!r} must be ASCII letters, digits, '_', "
                         "'.' and '-', starting with a letter or digit (it names files and "
                         "Snakemake targets); rename it")
    if len(name) > MAX_NAME_CHARS:
        raise InputError(f"{source}: task name {name[:40] + '...'!r} is longer than "
                         f"{MAX_NAME_CHARS} characters, too long to name its files")
    return name


def task_name(path: str | Path) -> str:
    """The task's name: its file name without the suffix. Raises InputError if unusable."""
    path = Path(path)
    return check_task_name(path.name[: -len(path.suffix)] if path.suffix else path.name, path)


def never_a_task(path: Path) -> bool:
    """Hidden files (.gitkeep, macOS's ._name), office lock files (~$name) and README files:
    nobody means those as tasks, whatever their suffix."""
    return path.name.startswith((".", "~$")) or path.name.upper().startswith("README")


def find_task_files(folder: str | Path, files: dict[str, str] | None = None) -> dict[str, Path]:
    """Task name -> file: every .jsonl/.csv/.txt in `folder` (absent folder: none) but those
    `never_a_task`, plus `files`.

    Raises InputError when two files give the same name.
    """
    found: dict[str, Path] = {}
    folder = Path(folder)
    candidates = sorted(folder.iterdir()) if folder.is_dir() else []
    for path in candidates:
        if path.is_file() and path.suffix.lower() in TASK_SUFFIXES and not never_a_task(path):
            name = task_name(path)
            if name in found:
                raise InputError(f"{path}: task {name!r} is also given by {found[name]}")
            found[name] = path
    for name, path in (files or {}).items():
        check_task_name(name, f"config new_tasks.files ({path})")
        if name in found and Path(path).resolve() != found[name].resolve():
            raise InputError(f"{path}: task {name!r} is also given by {found[name]}")
        found[name] = Path(path)
    return dict(sorted(found.items()))


def skipped_files(folder: str | Path) -> list[tuple[Path, str]]:
    """Files in `folder` that `find_task_files` leaves out and a user may have meant as tasks,
    sorted, each with the reason: another suffix (.parquet, .json, ...), or a link whose
    target is missing. Those `never_a_task` are not listed. An absent folder has none."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    skipped = []
    for path in sorted(folder.iterdir()):
        if never_a_task(path):
            continue
        if path.is_symlink() and not path.exists():
            skipped.append((path, "a link to a missing file"))
        elif path.is_file() and path.suffix.lower() not in TASK_SUFFIXES:
            skipped.append((path, "not a task file (.jsonl, .csv or .txt)"))
    return skipped


def check_task_names(tasks: list[str], datasets: list[str]) -> None:
    """A new task may not share a benchmark dataset's name, or another task's or dataset's
    name but for case: both would own the same files (on case-insensitive file systems)."""
    clash = sorted(set(tasks) & set(datasets))
    if clash:
        raise InputError(f"task file name(s) {clash} equal benchmark dataset name(s); "
                         "rename the task file(s)")
    near = [g for g in case_clashes(sorted(set(tasks) | set(datasets))) if set(g) & set(tasks)]
    if near:
        raise InputError(f"task name(s) differ only in case from other tasks or benchmark "
                         f"datasets: {near[:3]}; they would share files on case-insensitive "
                         "file systems: rename the task file(s)")


def _as_written(value: object) -> object:
    """A JSON number of an id, text or label field as its text (1 stays "1", not "1.0" after
    polars makes one column of ints and floats); anything else unchanged."""
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return json.dumps(value) if is_number else value


def _missing_if_nan(constant: str) -> float | None:
    """NaN in a JSON line (not JSON, but what Python's json.dumps writes for a missing value,
    e.g. of a pandas frame) is a missing value, as null; otherwise it would become the prompt
    or label "NaN". Infinity stays a number (a correctness column refuses it by value)."""
    return None if constant == "NaN" else float(constant)


def _read_jsonl(path: Path) -> pl.DataFrame:
    rows, numbers = [], []
    # utf-8-sig: a byte-order mark (as some Windows editors write) is not part of line 1.
    with open(path, encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line, parse_constant=_missing_if_nan)
            except json.JSONDecodeError as error:
                raise InputError(f"{path}: line {number} is not JSON ({error.msg})") from error
            if not isinstance(row, dict):
                raise InputError(f"{path}: line {number} is not a JSON object with a "
                                 f"'{TEXT_FIELD}' field")
            for field, value in row.items():
                if isinstance(value, str):
                    check_unicode(value, f"{path}: line {number}: field '{field}'")
            for field in OWN_FIELDS:
                if field in row:
                    row[field] = _as_written(row[field])
            rows.append(row)
            numbers.append(number)
    if not rows:
        return pl.DataFrame({TEXT_FIELD: []}, schema={TEXT_FIELD: pl.String})
    try:
        return pl.DataFrame(rows, infer_schema_length=None)
    except (pl.exceptions.PolarsError, TypeError, ValueError):
        pass
    # Some field is an object or a list on one line and something else on another, which
    # polars cannot hold in one column. Elsewhere than text, label and id, the field becomes
    # its values as written (JSON text), then is ignored or refused like any other.
    fields = list(dict.fromkeys(field for row in rows for field in row))
    for field in fields:
        if field in OWN_FIELDS or _one_column(rows, field):
            continue
        for row in rows:
            if isinstance(row.get(field), (dict, list)):
                row[field] = json.dumps(row[field])
    try:
        return pl.DataFrame(rows, infer_schema_length=None)
    except (pl.exceptions.PolarsError, TypeError, ValueError) as error:
        field = next((f for f in fields if not _one_column(rows, f)), None)
        if field is None:
            raise InputError(f"{path}: cannot read as one table ({error})") from error
        kinds = _kinds_by_line(rows, numbers, field)
        if len(kinds) == 2:
            differ = (f"is {kinds[0][1]} on line {kinds[0][0]} but {kinds[1][1]} on line "
                      f"{kinds[1][0]}")
        else:  # the same kind, other shapes ([1] and [[1]])
            differ = "holds values of different types across lines"
        raise InputError(f"{path}: field {field!r} {differ}; it must be a string or a number "
                         "on every line") from error


def _one_column(rows: list[dict], field: str) -> bool:
    """Whether polars can hold every line's value of `field` in one column, built as the
    whole table is (pl.Series alone refuses 1 and "x", which the table takes)."""
    try:
        pl.DataFrame([{field: row.get(field)} for row in rows], infer_schema_length=None)
    except (pl.exceptions.PolarsError, TypeError, ValueError):
        return False
    return True


def _kinds_by_line(rows: list[dict], numbers: list[int], field: str) -> list[tuple[int, str]]:
    """The first two (line number, kind) of `field` that differ: an object, a list or a plain
    value. numbers: each row's line in the file."""
    def kind(value: object) -> str:
        return "an object" if isinstance(value, dict) else \
            "a list" if isinstance(value, list) else "a plain value"
    seen: list[tuple[int, str]] = []
    for number, row in zip(numbers, rows):
        if row.get(field) is not None and (not seen or kind(row[field]) != seen[0][1]):
            seen.append((number, kind(row[field])))
            if len(seen) == 2:
                break
    return seen


def _read_raw(path: Path) -> pl.DataFrame:
    suffix = path.suffix.lower()
    if suffix not in TASK_SUFFIXES:
        raise InputError(f"{path}: a task file must be .jsonl, .csv or .txt, not {suffix!r}")
    if not path.exists():
        raise InputError(f"{path}: task file does not exist")
    if not path.is_file():
        raise InputError(f"{path}: a task file must be a file, not a folder")
    try:
        if suffix == ".jsonl":
            return _read_jsonl(path)
        if suffix == ".csv":
            check_not_wide_text(path, "the task file")
            # Ids, texts and labels as written: inferred as numbers, `007` would become 7.
            as_written = {f: pl.String for f in OWN_FIELDS}
            return pl.read_csv(path, infer_schema_length=None, schema_overrides=as_written)
        lines = path.read_text(encoding="utf-8-sig").splitlines()
        return pl.DataFrame({TEXT_FIELD: [line for line in lines if line.strip()]},
                            schema={TEXT_FIELD: pl.String})
    except UnicodeDecodeError as error:
        raise InputError(f"{path}: not UTF-8 text ({error})") from error
    except pl.exceptions.NoDataError:
        return pl.DataFrame({TEXT_FIELD: []}, schema={TEXT_FIELD: pl.String})
    except pl.exceptions.PolarsError as error:
        raise InputError(f"{path}: cannot read as CSV ({error})") from error
    except OSError as error:  # permissions, I/O errors: the file is there but unreadable
        raise InputError(f"{path}: cannot read the task file ({error.strerror or error})") \
            from error


def _is_zero_or_one(values: pl.Series) -> pl.Series:
    """Per value of a numeric series: is it 0 or 1 (1.0 in a CSV column of floats too)."""
    # As Float64 on both sides: polars' is_in does not compare floats with a list of ints.
    return values.cast(pl.Float64).is_in([0.0, 1.0])


def _first_non_correctness(column: pl.Series) -> object | None:
    """The first non-null value that is neither 0/1 nor a boolean; None if there is none."""
    values = column.drop_nulls()
    if values.dtype == pl.Boolean:
        return None
    if values.dtype.is_numeric():
        values = values.filter(~_is_zero_or_one(values))
    elif values.dtype == pl.String:
        # A CSV column with one bad value is text throughout: name that value, not a 0/1 cell
        # (a JSON string "1" alone is still refused, as "1").
        odd = values.filter(~values.str.strip_chars().str.to_lowercase().is_in(
            ["0", "1", "0.0", "1.0", "true", "false"]))
        values = odd if odd.len() else values
    return values[0] if values.len() else None


def _is_correctness(column: pl.Series) -> bool:
    """True when the column is boolean or numeric and every non-null value is 0/1 or a boolean.
    An all-empty text column has no value `_first_non_correctness` rejects, yet is no
    correctness column (it is dropped)."""
    typed = column.dtype == pl.Boolean or column.dtype.is_numeric()
    return typed and _first_non_correctness(column) is None


def read_task_file(path: str | Path, name: str) -> tuple[pl.DataFrame, list[str]]:
    """The table of task `name` read from `path`, and log lines saying what was dropped.

    name: the task's name (from `find_task_files`: the file's stem or its `new_tasks.files`
    key), the prefix of default instance ids `<name>-<i>` for the i-th row read (from 1; blank
    lines are not rows).
    Table: instance_id (str), text (str), label (str, when given), then one Float64 column
    per model-correctness field (1.0 / 0.0 / null), in file order, repeated texts dropped
    (the first kept). Raises InputError naming the file when `name` is unusable, or the file
    cannot be read, has no `text` field, holds no non-empty text, or has a field named like a
    model id holding something other than 0/1 or true/false.
    """
    path = Path(path)
    check_task_name(name, path)
    raw = _read_raw(path)
    if TEXT_FIELD not in raw.columns:
        raise InputError(f"{path}: no '{TEXT_FIELD}' field; fields are {raw.columns}")
    notes = []
    for field in OWN_FIELDS:
        if field in raw.columns and raw[field].dtype.is_nested():
            raise InputError(f"{path}: '{field}' must be a string or a number on every line, "
                             f"not {raw[field].dtype}")
    raw = raw.with_columns(pl.col(TEXT_FIELD).cast(pl.String))
    ids = next((f for f in ID_FIELDS if f in raw.columns), None)
    raw = raw.with_columns(
        (pl.col(ids).cast(pl.String) if ids else
         pl.format(f"{name}-{{}}", pl.int_range(1, raw.height + 1))).alias("instance_id")
    )
    empty = pl.col(TEXT_FIELD).is_null() | (pl.col(TEXT_FIELD).str.strip_chars() == "")
    n_empty = raw.filter(empty).height
    raw = raw.filter(~empty)
    if raw.height == 0:
        raise InputError(f"{path}: no texts (the '{TEXT_FIELD}' field is empty on every line)")
    if n_empty:
        notes.append(f"{path}: dropped {n_empty} empty text(s)")
    blank_id = raw["instance_id"].is_null() | (raw["instance_id"].str.strip_chars() == "")
    if blank_id.any() or raw["instance_id"].is_duplicated().any():
        raise InputError(f"{path}: '{ids}' must be unique and non-empty on every line")
    first = raw.unique(subset=TEXT_FIELD, keep="first", maintain_order=True)
    if first.height < raw.height:
        notes.append(f"{path}: dropped {raw.height - first.height} repeated text(s), "
                     "kept the first")
    columns = [pl.col("instance_id"), pl.col(TEXT_FIELD)]
    if LABEL_FIELD in first.columns:
        columns.append(pl.col(LABEL_FIELD).cast(pl.String))
    fixed = set(OWN_FIELDS)  # instance_id among them, whichever id field the file had
    dropped = []
    for field in first.columns:
        if field in fixed:
            continue
        if _is_correctness(first[field]):
            columns.append(pl.col(field).cast(pl.Float64))
            continue
        bad = _first_non_correctness(first[field])
        if MODEL_ID_MARK in field and bad is not None:
            # Named like a model id, so most likely meant as its correctness: dropping it
            # would only leave that model's true accuracy blank in the ranking.
            raise InputError(f"{path}: field {field!r} looks like a model id but holds "
                             f"{bad!r}; a model's correctness must be 0/1 or true/false "
                             "(empty where unknown)")
        dropped.append(field)
    if dropped:
        notes.append(f"{path}: ignored field(s) {dropped} (neither text, id, label nor 0/1 "
                     "model correctness)")
    return first.select(columns), notes


def correctness_columns(table: pl.DataFrame) -> list[str]:
    """The per-model correctness columns of a task table from `read_task_file`."""
    return [c for c in table.columns if c not in {"instance_id", TEXT_FIELD, LABEL_FIELD}]


def given_accuracy(table: pl.DataFrame) -> dict[str, float]:
    """Model -> mean of its given correctness over the task's labelled prompts."""
    return {c: float(table[c].mean()) for c in correctness_columns(table)
            if table[c].drop_nulls().len() > 0}
