"""Cleaning a source table into correctness tables, and choosing the pool's models."""

import numpy as np
import polars as pl
import pytest

from conftest import sized_pool
from llmrouter.artifacts import InputError
from llmrouter.benchmark import (correctness_table, list_datasets, read_dataset_rows,
                                 scan_source_table)
from llmrouter.pool import build_pool, check_neighbour_supply, select_models


def rows(*items):
    return pl.DataFrame(items, schema=["dataset", "instance_id", "text", "model", "score"],
                        orient="row")


def test_correctness_table_cleans_and_reports():
    frame = rows(
        ("d", "i1", "same text", "a", 1.0),
        ("d", "i1", "same text", "b", 0.0),
        ("d", "i2", "other", "a", float("nan")),
        ("d", "i2", "other", "b", 0.7),
        ("d", "i3", "same text", "a", 1.0),  # repeated text: dropped, first kept
        ("d", "i3", "same text", "b", 1.0),
        ("e", "j1", "not mine", "a", 1.0),
    )
    table, report = correctness_table(frame, "d", threshold=0.5)
    assert table.columns == ["dataset", "instance_id", "text", "model", "score", "correct"]
    assert table.select("instance_id", "model", "correct").rows() == [
        ("i1", "a", True), ("i1", "b", False), ("i2", "b", True)]
    assert report.nan_scores == 1 and report.repeated_texts == 1
    assert any("NaN" in line for line in report.lines())
    assert any("repeated" in line for line in report.lines())


def test_threshold_is_inclusive():
    frame = rows(("d", "i1", "t", "a", 0.5), ("d", "i2", "u", "a", 0.49))
    table, _ = correctness_table(frame, "d", threshold=0.5)
    assert table["correct"].to_list() == [True, False]


def test_empty_dataset_is_an_error():
    frame = rows(("d", "i1", "t", "a", float("nan")))
    with pytest.raises(InputError, match="empty dataset"):
        correctness_table(frame, "d", threshold=0.5)


def test_source_table_errors_name_the_file(tmp_path, monkeypatch):
    missing = tmp_path / "nope.parquet"
    with pytest.raises(InputError, match="nope.parquet: table source file does not exist$"):
        scan_source_table(missing)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match=f"looked for {tmp_path}/data/nope.parquet"):
        scan_source_table("data/nope.parquet")
    bad = tmp_path / "bad.csv"
    bad.write_text("dataset,instance_id,text,model\nd,i,t,m\n")
    with pytest.raises(InputError, match=r"bad.csv: missing column\(s\) \['score'\]"):
        scan_source_table(bad)
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"not parquet at all")
    with pytest.raises(InputError, match="garbage.parquet"):
        list_datasets(garbage)
    empty = tmp_path / "empty.csv"
    empty.write_text("dataset,instance_id,text,model,score\n")
    with pytest.raises(InputError, match="no rows"):
        list_datasets(empty)


@pytest.mark.parametrize("column", ["instance_id", "text", "model"])
def test_a_row_without_id_text_or_model_is_an_error(column):
    frame = rows(("d", "i1", "t", "a", 1.0), ("d", "i2", "u", "a", 0.0))
    frame = frame.with_columns(pl.when(pl.col("instance_id") == "i2").then(None)
                               .otherwise(pl.col(column)).alias(column))
    with pytest.raises(InputError, match=f"1 row\\(s\\) without a value in column '{column}'"):
        correctness_table(frame, "d", threshold=0.5)


def test_a_threshold_under_which_nothing_is_correct_is_an_error():
    frame = rows(("d", "i1", "t", "a", 1.0), ("d", "i2", "u", "a", 0.0))
    with pytest.raises(InputError, match="no model is correct.*scores 0 to 1.*threshold 50"):
        correctness_table(frame, "d", threshold=50)


@pytest.mark.parametrize("first_of_second", ["a", "b"])
def test_an_instance_id_per_row_rather_than_per_question_is_an_error(first_of_second):
    # Audit: with each (model, question) row under its own id, keeping the first instance of
    # each repeated text kept one model's row of each question; the others left the pool, in
    # the log alone. In either order of the models' rows.
    other = "b" if first_of_second == "a" else "a"
    frame = rows(("d", "r1", "t", "a", 1.0), ("d", "r2", "t", "b", 0.0),
                 ("d", "r3", "u", first_of_second, 0.0), ("d", "r4", "u", other, 1.0))
    with pytest.raises(InputError, match="dataset 'd': each of its 4 instance ids holds one "
                                         "model's row, of 2 models; an instance_id must name "
                                         "one question"):
        correctness_table(frame, "d", threshold=0.5)
    # A true repeated question with shared ids, one model on the copy alone: not this error.
    shared = rows(("d", "i1", "t", "a", 1.0), ("d", "i1", "t", "b", 0.0),
                  ("d", "i2", "t", "c", 1.0), ("d", "i3", "u", "a", 1.0))
    assert correctness_table(shared, "d", threshold=0.5)[1].repeated_texts == 1


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-32"])
def test_a_table_source_csv_in_utf16_or_utf32_is_named_as_such(tmp_path, encoding):
    # Audit: read as one garbled column, reported as "missing column(s) [...]".
    path = tmp_path / "table.csv"
    bom = {"utf-16-le": b"\xff\xfe", "utf-16-be": b"\xfe\xff", "utf-32": b""}[encoding]
    path.write_bytes(bom + "dataset,instance_id,text,model,score\n".encode(encoding))
    wide = "UTF-32" if encoding == "utf-32" else "UTF-16"
    with pytest.raises(InputError, match=f"{path}: the table source is {wide} text, not UTF-8"):
        scan_source_table(path)


def test_repeated_rows_that_agree_are_dropped_and_counted():
    frame = rows(("d", "i1", "t", "a", 1.0), ("d", "i1", "t", "a", 1.0),
                 ("d", "i2", "u", "a", 0.0))
    table, report = correctness_table(frame, "d", threshold=0.5)
    assert table["instance_id"].to_list() == ["i1", "i2"]
    assert report.repeated_rows == 1
    assert any("1 repeated (instance, model) rows" in line for line in report.lines())


@pytest.mark.parametrize(("bad_row", "message"), [
    (("d", "i1", "t", "a", 0.0), "1 \\(instance, model\\) pair\\(s\\) with different scores in "
                                 "repeated rows, e.g. instance_id 'i1', model 'a'"),
    (("d", "i1", "t (variant)", "b", 1.0), "1 instance\\(s\\) with different texts in repeated "
                                           "rows, e.g. instance_id 'i1'"),
    (("d", "i3", "   ", "a", 1.0), "1 row\\(s\\) with a blank text.*'i3'"),
    (("d", "i3", "v", "a", float("inf")), "1 infinite score\\(s\\).*'i3' of model 'a'"),
    (("d", "i3", "v", "a", 5.0), "1 score\\(s\\) outside \\[0, 1\\] \\(from 0 to 5.*'i3'.*"
                                 "threshold 0.5"),
    (("d", "i3", "v", "a", -1.0), "1 score\\(s\\) outside \\[0, 1\\] \\(from -1 to 1"),
])
def test_rows_whose_meaning_depends_on_their_order_or_scale_are_errors(bad_row, message):
    good = [("d", "i1", "t", "a", 1.0), ("d", "i1", "t", "b", 0.0), ("d", "i2", "u", "a", 0.0)]
    with pytest.raises(InputError, match=f"dataset 'd': {message}"):
        correctness_table(rows(*good, bad_row), "d", threshold=0.5)
    # Either order: the first row must not win silently.
    with pytest.raises(InputError, match=f"dataset 'd': {message}"):
        correctness_table(rows(bad_row, *good), "d", threshold=0.5)


def test_scores_on_another_scale_are_fine_with_a_threshold_on_it():
    frame = rows(("d", "i1", "t", "a", 80.0), ("d", "i2", "u", "a", 20.0))
    table, _ = correctness_table(frame, "d", threshold=50)
    assert table["correct"].to_list() == [True, False]


def test_source_values_and_dataset_names_are_checked(tmp_path):
    words = tmp_path / "words.csv"
    words.write_text("dataset,instance_id,text,model,score\nd,i,t,m,high\n")
    with pytest.raises(InputError, match="words.csv: cannot read dataset 'd'.*number"):
        read_dataset_rows(words, "d")
    for name, message in (("med/anatomy", "cannot name a file"), ("", "no dataset")):
        table = tmp_path / "names.parquet"
        pl.DataFrame({"dataset": [name or None, "ok"], "instance_id": ["i", "j"],
                      "text": ["t", "u"], "model": ["m", "m"],
                      "score": [1.0, 0.0]}).write_parquet(table)
        with pytest.raises(InputError, match=f"names.parquet: .*{message}"):
            list_datasets(table)


def test_a_csv_source_is_read_as_written_whatever_its_first_rows_look_like(tmp_path):
    # Types guessed from the first 100 rows would reject the late 0.5 score and the id q150,
    # and read dataset, id, text and model `01` / `007` / `12.50` as numbers.
    lines = ["dataset,instance_id,text,model,score"]
    lines += [f"a,{i},question {i},m,{i % 2}" for i in range(150)]
    lines += ["a,q150,question 150,m,0.5", "01,007,12.50,01,1", "1,7,12.5,1,0"]
    table = tmp_path / "late.csv"
    table.write_text("\n".join(lines) + "\n")
    assert list_datasets(table) == ["01", "1", "a"]
    assert read_dataset_rows(table, "a").row(-1) == ("a", "q150", "question 150", "m", 0.5)
    assert read_dataset_rows(table, "01").row(0) == ("01", "007", "12.50", "01", 1.0)


def test_names_that_clash_as_files_and_nested_columns_are_errors(tmp_path):
    def table(**columns) -> str:
        path = tmp_path / "t.parquet"
        base = {"dataset": ["Abc", "ok"], "instance_id": ["i", "j"], "text": ["t", "u"],
                "model": ["m", "m"], "score": [1.0, 0.0]}
        pl.DataFrame({**base, **columns}).write_parquet(path)
        return path

    with pytest.raises(InputError, match=r"t.parquet: dataset names \[\['Abc', 'abc'\]\] "
                                         "differ only in case"):
        list_datasets(table(dataset=["Abc", "abc"]))
    with pytest.raises(InputError, match="t.parquet: dataset name.* longer than 200"):
        list_datasets(table(dataset=["d" * 201, "ok"]))
    # A struct cast to text would be embedded as '{"x"}'.
    with pytest.raises(InputError, match=r"t.parquet: column\(s\) \{'text': .Struct"):
        scan_source_table(table(text=[{"q": "x"}, {"q": "y"}]))


def test_neighbour_supply_names_the_task_and_the_config_keys():
    pool = sized_pool
    check_neighbour_supply(pool([30, 30, 30]), "d0", 19, strict=True)
    check_neighbour_supply(pool([30]), "new task", 19, strict=True)  # uses every dataset
    with pytest.raises(InputError, match="task 'd0'.*knn.k and smoother.descriptor_k.*offer 0"):
        check_neighbour_supply(pool([30]), "d0", 19, strict=False)
    # a dataset of 10 beside one of 100: the large one's inputs find only 10 neighbours
    with pytest.raises(InputError, match="task 'd1'.*offer 10 .*1 other dataset"):
        check_neighbour_supply(pool([10, 100]), "d1", 19, strict=False)
    # strict: any one more dataset may be left out, here the 25-row one
    check_neighbour_supply(pool([25, 25, 100]), "d2", 19, strict=False)
    with pytest.raises(InputError, match=r"task 'd2'.*strict mode.*offer 19"):
        check_neighbour_supply(pool([25, 19, 100]), "d2", 20, strict=True)


def test_select_models_keeps_dense_models_and_rejects_unknown_names():
    present = {"d1": {"a", "b", "c"}, "d2": {"a", "b"}}
    kept, dropped = select_models(present, include=None, exclude=["b"])
    assert kept == ["a"]
    assert dropped["b"] == "in models.exclude" and "missing from 1" in dropped["c"]
    with pytest.raises(InputError, match="models.exclude: unknown model"):
        select_models(present, include=None, exclude=["zzz"])
    with pytest.raises(InputError, match="models.include: unknown model"):
        select_models(present, include=["a", "qq"], exclude=None)


def test_build_pool_orders_rows_and_drops_incomplete_instances():
    d1 = rows(("d1", "x", "t", "a", 1.0), ("d1", "x", "t", "b", 0.0),
              ("d1", "y", "u", "a", 0.0)).with_columns(correct=pl.col("score") >= 0.5)
    d0 = rows(("d0", "z", "v", "a", 1.0), ("d0", "z", "v", "b", 1.0)).with_columns(
        correct=pl.col("score") >= 0.5)
    pool, dropped = build_pool({"d1": d1, "d0": d0}, ["a", "b"])
    assert pool.datasets == ["d0", "d1"]
    assert pool.instance_ids.tolist() == ["z", "x"]
    np.testing.assert_array_equal(pool.correct, [[1, 1], [1, 0]])
    assert dropped == {"d0": 0, "d1": 1}
    np.testing.assert_allclose(pool.task_accuracy(), [[1, 1], [1, 0]])


def test_a_config_that_leaves_no_model_says_so():
    present = {"d1": {"a", "b", "c"}, "d2": {"a", "b"}}
    with pytest.raises(InputError, match=r"models.include / models.exclude leave no model of "
                                         r"the 3 the datasets have: \['a', 'b', 'c'\]"):
        select_models(present, include=None, exclude=["a", "b", "c"])
    with pytest.raises(InputError, match="models.include / models.exclude leave no model"):
        select_models(present, include=["a"], exclude=["a"])
    # Not the config's doing: c is chosen but lacks d2.
    with pytest.raises(InputError, match="no model has results in every dataset"):
        select_models(present, include=["c"], exclude=None)


def test_a_pool_where_every_model_is_always_correct_is_an_error():
    # threshold 0 in config: every score counts as correct, every pick is perfect.
    d0 = rows(("d0", "z", "v", "a", 0.0), ("d0", "z", "v", "b", 1.0)).with_columns(
        correct=pl.col("score") >= 0.0)
    with pytest.raises(InputError, match="every model is correct on every instance of all 1 "
                                         r"dataset\(s\).*table.threshold"):
        build_pool({"d0": d0}, ["a", "b"])
