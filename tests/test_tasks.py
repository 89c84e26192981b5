"""Reading a user's task file (llmrouter/tasks.py): formats, optional fields, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from llmrouter.artifacts import InputError
from llmrouter.tasks import (
    check_task_name,
    check_task_names,
    correctness_columns,
    find_task_files,
    given_accuracy,
    read_task_file,
    skipped_files,
    task_name,
)


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_jsonl_with_ids_labels_and_model_columns(tmp_path):
    path = write_jsonl(tmp_path / "algebra.jsonl", [
        {"id": "q1", "text": "Solve 2x = 4.", "label": "2", "org/model-a": 1, "org/model-b": 0,
         "source": "book"},
        {"id": "q2", "text": "Solve x + 1 = 3.", "label": 2, "org/model-a": 0},
        {"id": "q3", "text": "Factor x^2 - 1.", "label": "(x-1)(x+1)", "org/model-a": True},
    ])
    table, notes = read_task_file(path, "algebra")
    assert table.columns == ["instance_id", "text", "label", "org/model-a", "org/model-b"]
    assert table["instance_id"].to_list() == ["q1", "q2", "q3"]
    assert table["label"].to_list() == ["2", "2", "(x-1)(x+1)"]
    assert table["org/model-b"].to_list() == [0.0, None, None]
    assert correctness_columns(table) == ["org/model-a", "org/model-b"]
    assert given_accuracy(table) == {"org/model-a": pytest.approx(2 / 3), "org/model-b": 0.0}
    assert any("source" in n for n in notes)


def test_csv_and_txt_get_ids_from_the_name(tmp_path):
    csv = tmp_path / "poems.csv"
    csv.write_text('text,label\n"Write a haiku, about rain",x\nName a rhyme for cat,hat\n')
    table, _ = read_task_file(csv, "poems")
    assert table["instance_id"].to_list() == ["poems-1", "poems-2"]
    assert table["text"][0] == "Write a haiku, about rain"
    txt = tmp_path / "chat.txt"
    txt.write_text("first prompt\n\n  \nsecond prompt\nfirst prompt\n")
    table, notes = read_task_file(txt, "chat")
    assert table["text"].to_list() == ["first prompt", "second prompt"]
    assert table.columns == ["instance_id", "text"]
    assert any("repeated" in n for n in notes)


def test_csv_ids_texts_and_labels_stay_as_written(tmp_path):
    # Inferred as integers, `007` and `7` would both read 7 (a false repeat) and 12 would
    # read as a number where a text is expected.
    csv = tmp_path / "codes.csv"
    csv.write_text("id,text,label\n007,12,01\n7,what is 3 + 4?,7\n")
    table, _ = read_task_file(csv, "codes")
    assert table["instance_id"].to_list() == ["007", "7"]
    assert table["text"].to_list() == ["12", "what is 3 + 4?"]
    assert table["label"].to_list() == ["01", "7"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.jsonl", "", "no texts"),
        ("blank.jsonl", '{"text": ""}\n{"text": "  "}\n', "no texts"),
        ("empty.txt", "\n\n", "no texts"),
        ("headeronly.csv", "text\n", "no texts"),
        ("notext.jsonl", '{"prompt": "hi"}\n', "no 'text' field"),
        ("notext.csv", "prompt\nhi\n", "no 'text' field"),
        ("broken.jsonl", '{"text": "a"}\n{"text": \n', "line 2 is not JSON"),
        ("list.jsonl", '["a", "b"]\n', "line 1 is not a JSON object"),
        ("nested.jsonl", '{"text": {"a": 1}}\n', "must be a string"),
        ("prompts.parquet", "x", "must be .jsonl, .csv or .txt"),
        ("dupes.jsonl", '{"id": 1, "text": "a"}\n{"id": 1, "text": "b"}\n', "must be unique"),
        ("listid.jsonl", '{"id": [1], "text": "a"}\n', "'id' must be a string or a number"),
        ("listlabel.jsonl", '{"label": ["A"], "text": "a"}\n', "'label' must be a string"),
        ("blankid.csv", 'id,text\n" ",a\n2,b\n', "non-empty on every line"),
        # A field named like a model id must hold its correctness, not be dropped in silence.
        ("words.jsonl", '{"text": "a", "01-ai/yi-34b": "yes"}\n{"text": "b", "01-ai/yi-34b": '
                        '"no"}\n', "field '01-ai/yi-34b' looks like a model id but holds 'yes'; "
                                   "a model's correctness must be 0/1 or true/false"),
        ("scores.csv", "text,org/model-a\na,1\nb,0.5\nc,0\n",
         "looks like a model id but holds 0.5;"),
        ("strings.jsonl", '{"text": "a", "org/m": "1"}\n', "looks like a model id but holds '1';"),
    ],
)
def test_bad_task_files_name_the_file(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(InputError) as error:
        read_task_file(path, "task")
    assert str(path) in str(error.value)
    assert message in str(error.value)


def test_missing_file_and_binary_file(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_task_file(tmp_path / "gone.jsonl", "gone")
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(InputError, match="not UTF-8"):
        read_task_file(binary, "binary")


def test_the_name_not_the_file_names_the_task(tmp_path):
    # new_tasks.files: {my_prompts: "my prompts.jsonl"}: any file name under a valid key.
    path = write_jsonl(tmp_path / "my prompts.jsonl", [{"text": "a"}, {"text": "b"}])
    table, _ = read_task_file(path, "my_prompts")
    assert table["instance_id"].to_list() == ["my_prompts-1", "my_prompts-2"]
    found = find_task_files(tmp_path / "absent", {"my_prompts": str(path)})
    assert found == {"my_prompts": path}
    with pytest.raises(InputError, match="task name 'my prompts'") as error:
        read_task_file(tmp_path / "fine.jsonl", "my prompts")
    assert "fine.jsonl" in str(error.value)
    with pytest.raises(InputError, match="new_tasks.files"):
        find_task_files(tmp_path / "absent", {"bad name!": str(path)})
    # "ü" is a letter: the rule says ASCII, and what to do.
    with pytest.raises(InputError, match=r"task name 'über' must be ASCII letters, digits, "
                                         r"'_', '.' and '-', .*; rename it"):
        task_name(tmp_path / "über.jsonl")


def test_find_task_files_and_names(tmp_path):
    folder = tmp_path / "tasks"
    folder.mkdir()
    (folder / "a.jsonl").write_text('{"text": "x"}\n')
    (folder / "b.txt").write_text("y\n")
    (folder / "notes.md").write_text("not a task")
    extra = tmp_path / "elsewhere.csv"
    found = find_task_files(folder, {"c": str(extra)})
    assert list(found) == ["a", "b", "c"]
    assert found["c"] == extra
    assert find_task_files(tmp_path / "absent") == {}
    (folder / "a.csv").write_text("text\nz\n")
    with pytest.raises(InputError, match="also given by"):
        find_task_files(folder)
    with pytest.raises(InputError, match="task name"):
        task_name(tmp_path / "bad name!.jsonl")


def test_other_fields_and_empty_model_fields_stay_ignored(tmp_path):
    path = tmp_path / "extra.csv"
    path.write_text("text,source,org/model-a,org/model-b\na,book,,1\nb,web,,0\n")
    table, notes = read_task_file(path, "extra")
    assert correctness_columns(table) == ["org/model-b"]
    assert any("['source', 'org/model-a']" in n for n in notes)


def test_a_csv_column_of_floats_is_correctness(tmp_path):
    # polars reads 1.0 / 0.0 as Float64, whose is_in against [0, 1] raised a polars error.
    path = tmp_path / "floats.csv"
    path.write_text("text,org/model-a\na,1.0\nb,0.0\nc,\n")
    table, _ = read_task_file(path, "floats")
    assert table["org/model-a"].to_list() == [1.0, 0.0, None]


def test_skipped_files_names_what_a_user_may_have_meant_as_a_task(tmp_path):
    # Audit N6: tasks/p.parquet ended as Snakemake's "No rule to produce"; rules/common.smk
    # prints one line for each of these.
    folder = tmp_path / "tasks"
    folder.mkdir()
    for name in ("a.jsonl", "b.TXT", "p.parquet", "notes.md", "q.json", ".gitkeep",
                 "README.md", "readme.txt2"):
        (folder / name).write_text("x\n")
    (folder / "sub.csv").mkdir()
    # A link to a file that is gone (an unmounted drive) was left out without a word.
    (folder / "gone.jsonl").symlink_to(tmp_path / "elsewhere.jsonl")
    other = "not a task file (.jsonl, .csv or .txt)"
    assert skipped_files(folder) == [(folder / "gone.jsonl", "a link to a missing file"),
                                     (folder / "notes.md", other), (folder / "p.parquet", other),
                                     (folder / "q.json", other)]
    assert list(find_task_files(folder)) == ["a", "b"]
    assert skipped_files(tmp_path / "absent") == []


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".txt"])
def test_an_unreadable_task_file_is_an_input_error_naming_it(tmp_path, suffix):
    # A file that is there but cannot be read (no permission, an I/O error) gave a raw
    # PermissionError / OSError traceback. /proc/self/mem fails with EIO even for root.
    path = tmp_path / f"p{suffix}"
    path.symlink_to("/proc/self/mem")
    if not path.is_file():
        pytest.skip("no /proc/self/mem on this system")
    with pytest.raises(InputError, match=f"{path}: cannot read the task file"):
        read_task_file(path, "p")


def test_hidden_lock_and_readme_files_with_a_task_suffix_are_not_tasks(tmp_path):
    # macOS's ._a.jsonl and Excel's ~$a.csv stopped every snakemake call ("task name '._a'
    # must be letters, digits...") and a README.txt became task README.
    folder = tmp_path / "tasks"
    folder.mkdir()
    for name in ("a.jsonl", "._a.jsonl", "~$a.csv", ".hidden.txt", "README.txt", "Readme.csv"):
        (folder / name).write_text('{"text": "x"}\n')
    assert list(find_task_files(folder)) == ["a"]
    assert skipped_files(folder) == []


def test_a_task_may_not_take_a_benchmark_dataset_name():
    check_task_names(["algebra"], ["anatomy", "astronomy"])
    with pytest.raises(InputError, match="anatomy"):
        check_task_names(["algebra", "anatomy"], ["anatomy", "astronomy"])


def test_names_that_would_share_files_are_errors():
    # On case-insensitive file systems (macOS, Windows) results/scores/A.parquet is a.parquet.
    with pytest.raises(InputError, match=r"differ only in case .*\[\['Anatomy', 'anatomy'\]\]"):
        check_task_names(["Anatomy"], ["anatomy"])
    with pytest.raises(InputError, match=r"\[\['T', 't'\]\]"):
        check_task_names(["T", "t"], ["anatomy"])
    with pytest.raises(InputError, match="x.jsonl: task name .* longer than 200"):
        check_task_name("n" * 201, "x.jsonl")


def test_byte_order_marks_numbers_bad_unicode_and_folders(tmp_path):
    bom = tmp_path / "bom.txt"
    bom.write_bytes("\ufefffirst\nsecond\n".encode())
    assert read_task_file(bom, "bom")[0]["text"].to_list() == ["first", "second"]
    numbers = tmp_path / "numbers.jsonl"
    # JSON numbers as written: 1 is "1", not "1.0" (one column of ints and floats is Float64),
    # so it repeats the text "1" but not "1.0".
    numbers.write_text('{"text": 1}\n{"text": 2.5}\n{"text": "1.0"}\n{"text": "1"}\n')
    table, notes = read_task_file(numbers, "numbers")
    assert table["text"].to_list() == ["1", "2.5", "1.0"] and any("repeated" in n for n in notes)
    surrogate = tmp_path / "surrogate.jsonl"
    surrogate.write_text('{"text": "fine"}\n{"text": "bad \\ud800 half"}\n')
    with pytest.raises(InputError, match="surrogate.jsonl: line 2: field 'text' is not valid "
                                         "Unicode"):
        read_task_file(surrogate, "surrogate")
    (tmp_path / "folder.jsonl").mkdir()
    with pytest.raises(InputError, match="folder.jsonl: a task file must be a file"):
        read_task_file(tmp_path / "folder.jsonl", "folder")


def test_repository_example_task_reads():
    path = Path(__file__).resolve().parents[1] / "tasks" / "algebra_examples.jsonl"
    table, notes = read_task_file(path, "algebra_examples")
    assert table.height == 30 and not notes
    assert table.schema["text"] == pl.String


def test_nan_in_a_json_line_is_a_missing_value(tmp_path):
    # Audit: Python's json.dumps writes NaN for a missing value (a pandas frame's); it became
    # the prompt or label "NaN", or stopped the run in a correctness column.
    path = tmp_path / "nan.jsonl"
    path.write_text('{"text": "a", "label": NaN, "org/model-a": 1}\n'
                    '{"text": NaN, "org/model-a": 0}\n'
                    '{"text": "b", "org/model-a": NaN}\n')
    table, notes = read_task_file(path, "nan")
    assert table["text"].to_list() == ["a", "b"]
    assert table["org/model-a"].to_list() == [1, None]
    assert table["label"].to_list() == [None, None]
    assert any("dropped 1 empty text(s)" in note for note in notes), notes
    # -Infinity (json.dumps' for a log probability) in a field that is ignored stays harmless.
    path.write_text('{"text": "a", "logprob": -Infinity}\n')
    table, notes = read_task_file(path, "nan")
    assert table["text"].to_list() == ["a"] and "ignored field(s) ['logprob']" in notes[0]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32"])
def test_a_csv_saved_as_utf16_or_utf32_is_named_as_such(tmp_path, encoding):
    # Audit: polars read it as one garbled column: "no 'text' field; fields are ['\x00t...']".
    path = tmp_path / "wide.csv"
    path.write_bytes("text\nhello\n".encode(encoding))
    with pytest.raises(InputError, match=f"{path}: the task file is {encoding.upper()} text, "
                                         "not UTF-8; save it as UTF-8"):
        read_task_file(path, "wide")


def test_a_file_named_in_config_and_found_in_the_folder_is_one_task(tmp_path):
    # Audit: the same file by its absolute path in new_tasks.files was "also given by" itself.
    folder = tmp_path / "tasks"
    folder.mkdir()
    (folder / "t1.txt").write_text("a prompt\n")
    (folder / "t2.txt").write_text("another\n")
    same = str(folder / ".." / "tasks" / "t1.txt")
    assert find_task_files(folder, {"t1": same}) == {"t1": Path(same), "t2": folder / "t2.txt"}
    with pytest.raises(InputError, match="task 't1' is also given by"):
        find_task_files(folder, {"t1": str(folder / "t2.txt")})


def test_a_field_of_objects_on_some_lines_only_is_ignored_or_named(tmp_path):
    # Audit: `"meta": {...}` on one line and `"meta": "x"` on another stopped the run with
    # polars' multi-line advice (infer_schema_length) and no field named, though the README
    # says such fields are ignored.
    path = tmp_path / "mixed.jsonl"
    path.write_text('{"text": "a", "meta": {"k": 1}, "tags": ["x"]}\n'
                    '{"text": "b", "meta": "x", "tags": "y"}\n')
    table, notes = read_task_file(path, "mixed")
    assert table.columns == ["instance_id", "text"]
    assert f"{path}: ignored field(s) ['meta', 'tags']" in notes[0]
    # Where the field matters, it is named with the lines (blank lines counted).
    path.write_text('{"text": "a"}\n\n{"text": {"k": 1}}\n')
    with pytest.raises(InputError, match=f"{path}: field 'text' is a plain value on line 1 "
                                         "but an object on line 3"):
        read_task_file(path, "mixed")
    # A field polars takes (1, then "x") before the one it cannot, and a field of one kind in
    # two shapes: the message, not an IndexError.
    path.write_text('{"text": "a", "meta": 1, "id": {"a": 1}}\n'
                    '{"text": "b", "meta": "x", "id": "y"}\n')
    with pytest.raises(InputError, match="field 'id' is an object on line 1 but a plain value "
                                         "on line 2"):
        read_task_file(path, "mixed")
    path.write_text('{"text": "a", "label": [1]}\n{"text": "b", "label": [[1]]}\n')
    with pytest.raises(InputError, match="field 'label' holds values of different types across "
                                         "lines; it must be a string or a number"):
        read_task_file(path, "mixed")


def test_a_model_column_of_a_csv_names_its_bad_value_not_a_good_one(tmp_path):
    # Audit: `1` then `yes` under a model id was reported as "holds '1'".
    path = tmp_path / "excel.csv"
    path.write_text("text,01-ai/yi-34b\nWhat is 2+2?,1\nName a prime,yes\n")
    with pytest.raises(InputError, match="field '01-ai/yi-34b' looks like a model id but holds "
                                         "'yes'"):
        read_task_file(path, "excel")
