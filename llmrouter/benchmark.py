"""Per-dataset correctness tables: the long table every source (table, HELM) ends in.

A correctness table has one row per (instance, model):
dataset, instance_id, text, model, score, correct.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from llmrouter.artifacts import InputError, check_not_wide_text

BENCHMARK_COLUMNS = ["dataset", "instance_id", "text", "model", "score"]


@dataclass
class CleaningReport:
    """What cleaning dropped, so the log can say it instead of dropping silently."""

    dataset: str
    nan_scores: int = 0
    repeated_texts: int = 0
    repeated_rows: int = 0
    n_instances: int = 0
    n_models: int = 0

    def lines(self) -> list[str]:
        """Human-readable lines for the job's log."""
        out = [f"{self.dataset}: {self.n_instances} instances x {self.n_models} models"]
        if self.nan_scores:
            out.append(f"{self.dataset}: dropped {self.nan_scores} rows with a NaN score")
        if self.repeated_rows:
            out.append(f"{self.dataset}: dropped {self.repeated_rows} repeated (instance, model) "
                       "rows with the same score")
        if self.repeated_texts:
            out.append(
                f"{self.dataset}: dropped {self.repeated_texts} repeated texts (kept the first)"
            )
        return out


def scan_source_table(path: str | Path) -> pl.LazyFrame:
    """Lazily open a `table` source (Parquet or CSV) and check its columns."""
    path = Path(path)
    if not path.exists():
        # A relative path is read from the working directory (--directory), not the repo's.
        where = "" if path.is_absolute() else f" (looked for {path.resolve()})"
        raise InputError(f"{path}: table source file does not exist{where}")
    try:
        if path.suffix.lower() == ".csv":
            check_not_wide_text(path, "the table source")
            # Every value as written: types guessed from the first rows would turn ids `007`
            # and `7` into one, texts `12.50` into 12.5, and reject a later `0.5` score.
            frame = pl.scan_csv(path, infer_schema=False)
        elif path.suffix.lower() in {".parquet", ".pq"}:
            frame = pl.scan_parquet(path)
        else:
            raise InputError(f"{path}: table source must be .parquet or .csv")
        schema = frame.collect_schema()
    except (pl.exceptions.PolarsError, OSError) as error:
        raise InputError(f"{path}: cannot read table source ({error})") from error
    missing = [c for c in BENCHMARK_COLUMNS if c not in schema]
    if missing:
        raise InputError(f"{path}: missing column(s) {missing}; has {schema.names()}")
    nested = {c: str(schema[c]) for c in BENCHMARK_COLUMNS if schema[c].is_nested()}
    if nested:
        # A cast would make text of them ('{"x"}'), which would then be embedded.
        raise InputError(f"{path}: column(s) {nested} must hold plain values (strings, numbers)")
    return frame.select(
        pl.col("dataset").cast(pl.String),
        pl.col("instance_id").cast(pl.String),
        pl.col("text").cast(pl.String),
        pl.col("model").cast(pl.String),
        pl.col("score").cast(pl.Float64),
    )


# A dataset names files (results/benchmark/<dataset>.parquet, ...) and wildcards: one path
# component, not hidden, without characters that shells or Snakemake patterns treat specially.
DATASET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+=,@ -]*$")
# File names stop at 255 bytes, and an output's temporary file adds about 25 characters.
MAX_NAME_CHARS = 200


def case_clashes(names: list[str]) -> list[list[str]]:
    """Groups of names that differ only in case: one file on case-insensitive file systems
    (macOS and Windows by default), so their outputs would overwrite each other."""
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(name.casefold(), []).append(name)
    return [sorted(g) for g in groups.values() if len(g) > 1]


def list_datasets(path: str | Path) -> list[str]:
    """Sorted distinct dataset names of a table source.

    Raises InputError for rows without a dataset, or a name that cannot name a file.
    """
    frame = scan_source_table(path)
    try:
        names = frame.select(pl.col("dataset").unique()).collect()["dataset"]
    except pl.exceptions.PolarsError as error:
        raise InputError(f"{path}: cannot read table source ({error})") from error
    if names.is_null().any():
        raise InputError(f"{path}: some rows have no dataset (null in column 'dataset')")
    datasets = sorted(names.to_list())
    bad = [name for name in datasets if not DATASET_NAME.match(name)]
    if bad:
        raise InputError(f"{path}: dataset name(s) {bad[:5]} cannot name a file: use letters, "
                         "digits and _ . - (no '/', not starting with '.')")
    long = [name for name in datasets if len(name) > MAX_NAME_CHARS]
    if long:
        raise InputError(f"{path}: dataset name(s) longer than {MAX_NAME_CHARS} characters "
                         f"cannot name a file: {[n[:40] + '...' for n in long[:3]]}")
    clashes = case_clashes(datasets)
    if clashes:
        raise InputError(f"{path}: dataset names {clashes[:3]} differ only in case, so they "
                         "would share files on case-insensitive file systems: rename them")
    if not datasets:
        raise InputError(f"{path}: table source holds no rows")
    return datasets


def read_dataset_rows(path: str | Path, dataset: str) -> pl.DataFrame:
    """One dataset's long rows of a table source, read and typed (InputError naming the
    file when a value does not parse, e.g. a score that is not a number)."""
    try:
        return scan_source_table(path).filter(pl.col("dataset") == dataset).collect()
    except pl.exceptions.PolarsError as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        hint = "; is every score a number?" if "'score'" in first_line else ""
        raise InputError(f"{path}: cannot read dataset {dataset!r} ({first_line}){hint}") \
            from error


def correctness_table(
    frame: pl.DataFrame,
    dataset: str,
    threshold: float,
) -> tuple[pl.DataFrame, CleaningReport]:
    """Clean one dataset's long rows into its correctness table.

    Drops NaN/null scores and repeated (instance, model) rows that agree, keeps the first
    instance of each repeated text (in input order, as the reference code does) and marks
    `correct = score >= threshold`.
    Raises InputError when an instance id, text or model is missing or the text is blank,
    when an instance has two texts or a (instance, model) pair two scores, when every instance
    id holds one model's row while the dataset has several (ids per row), when a score is
    infinite or (with a threshold in [0, 1]) outside [0, 1], when nothing is left, or when
    nothing is correct (a threshold on another scale than the scores).
    """
    report = CleaningReport(dataset=dataset)
    frame = frame.filter(pl.col("dataset") == dataset)
    for column in ("instance_id", "text", "model"):
        missing = frame[column].null_count()
        if missing:
            raise InputError(f"dataset {dataset!r}: {missing} row(s) without a value in "
                             f"column {column!r}")
    blank = frame.filter(pl.col("text").str.strip_chars() == "")
    if blank.height:
        raise InputError(f"dataset {dataset!r}: {blank.height} row(s) with a blank text, e.g. "
                         f"instance {blank['instance_id'][0]!r}: there is nothing to embed")
    bad_score = pl.col("score").is_null() | pl.col("score").is_nan()
    report.nan_scores = frame.filter(bad_score).height
    frame = frame.filter(~bad_score)
    check_scores(frame, dataset, threshold)
    check_single_value(frame, dataset, ["instance_id"], "text", "instance(s)")
    check_ids_per_question(frame, dataset)
    check_single_value(frame, dataset, ["instance_id", "model"], "score",
                       "(instance, model) pair(s)")

    instances = frame.select("instance_id", "text").unique(subset="instance_id", keep="first",
                                                           maintain_order=True)
    first = instances.unique(subset="text", keep="first", maintain_order=True)
    report.repeated_texts = instances.height - first.height
    frame = frame.filter(pl.col("instance_id").is_in(first["instance_id"].implode()))
    kept = frame.unique(subset=["instance_id", "model"], keep="first", maintain_order=True)
    report.repeated_rows = frame.height - kept.height
    frame = kept

    order = first.with_row_index("_order").select("instance_id", "_order")
    frame = (
        frame.join(order, on="instance_id")
        .sort(["_order", "model"])
        .drop("_order")
        .with_columns((pl.col("score") >= threshold).alias("correct"))
        .select("dataset", "instance_id", "text", "model", "score", "correct")
    )
    report.n_instances = frame["instance_id"].n_unique()
    report.n_models = frame["model"].n_unique()
    if frame.height == 0:
        raise InputError(f"dataset {dataset!r}: no rows left after cleaning (empty dataset)")
    if not frame["correct"].any():
        raise InputError(f"dataset {dataset!r}: no model is correct on any instance (scores "
                         f"{frame['score'].min():g} to {frame['score'].max():g}, correct from "
                         f"threshold {threshold:g}): is the threshold on the scores' scale?")
    return frame, report


def check_scores(frame: pl.DataFrame, dataset: str, threshold: float) -> None:
    """InputError for an infinite score, or one outside [0, 1] when the threshold is in
    [0, 1]: a score on another scale would be thresholded as if it were a share (5 correct,
    -1 wrong) without a word. Other scales are fine with a threshold on them (e.g. 50)."""
    infinite = frame.filter(pl.col("score").is_infinite())
    if infinite.height:
        raise InputError(f"dataset {dataset!r}: {infinite.height} infinite score(s), e.g. "
                         f"instance {infinite['instance_id'][0]!r} of model "
                         f"{infinite['model'][0]!r}")
    if 0.0 <= threshold <= 1.0:
        outside = frame.filter((pl.col("score") < 0.0) | (pl.col("score") > 1.0))
        if outside.height:
            raise InputError(
                f"dataset {dataset!r}: {outside.height} score(s) outside [0, 1] (from "
                f"{frame['score'].min():g} to {frame['score'].max():g}, e.g. instance "
                f"{outside['instance_id'][0]!r} of model {outside['model'][0]!r}) while the "
                f"threshold {threshold:g} reads them as shares: fix the scores, or put the "
                "threshold on their scale")


def check_ids_per_question(frame: pl.DataFrame, dataset: str) -> None:
    """InputError when each instance id holds the row of one model only while the dataset has
    several: the ids then name rows, not questions. Dropping repeated texts would keep one
    model's row of each question, and the pool (which needs every model's result on an
    instance) would lose the rest, or every instance."""
    n_models = frame["model"].n_unique()
    rows_per_id = frame.group_by("instance_id").agg(pl.col("model").n_unique().alias("n"))
    if n_models > 1 and rows_per_id.height and rows_per_id["n"].max() == 1:
        raise InputError(f"dataset {dataset!r}: each of its {rows_per_id.height} instance ids "
                         f"holds one model's row, of {n_models} models; an instance_id must "
                         "name one question, shared by every model's row of it (not one id "
                         "per row)")


def check_single_value(frame: pl.DataFrame, dataset: str, keys: list[str], column: str,
                       what: str) -> None:
    """InputError when rows sharing `keys` (`what` they name, e.g. "instance(s)") carry
    different values of `column`: which one counted would depend on the rows' order."""
    counts = frame.group_by(keys).agg(pl.col(column).n_unique().alias("n"))
    several = counts.filter(pl.col("n") > 1).sort(keys)
    if several.height:
        example = ", ".join(f"{key} {several[key][0]!r}" for key in keys)
        raise InputError(f"dataset {dataset!r}: {several.height} {what} with different "
                         f"{column}s in repeated rows, e.g. {example}")
