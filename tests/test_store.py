"""Round trips of llmrouter.store's writers and readers, on tiny hand-made artifacts."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from llmrouter import store
from llmrouter.artifacts import InputError, write_table, write_text
from llmrouter.knn import Neighbours
from llmrouter.pool import Pool


def tiny_pool() -> Pool:
    # Dataset a: rows 0, 1 (a1, a2); dataset b: row 2 (b1). Two models.
    return Pool(
        datasets=["a", "b"],
        dataset_of=np.array([0, 0, 1], dtype=np.int32),
        instance_ids=np.array(["a1", "a2", "b1"]),
        models=["m1", "m2"],
        correct=np.array([[1, 0], [0, 1], [1, 1]], dtype=np.uint8),
    )


def test_pool_round_trip(tmp_path):
    pool = tiny_pool()
    correctness, models = tmp_path / "correct.parquet", tmp_path / "models.parquet"
    store.write_pool(pool, correctness, models, {"m0": "too few answers"})
    back = store.read_pool(correctness, models)
    assert back.datasets == ["a", "b"]
    assert back.dataset_of.tolist() == [0, 0, 1]
    assert back.instance_ids.tolist() == ["a1", "a2", "b1"]
    assert back.models == ["m1", "m2"]  # the dropped model is listed but not kept
    assert back.correct.dtype == np.uint8
    assert back.correct.tolist() == [[1, 0], [0, 1], [1, 1]]
    # The model list: kept models with their column, dropped ones with the reason.
    table = pl.read_parquet(models)
    assert table.rows() == [("m1", 0, True, ""), ("m2", 1, True, ""),
                            ("m0", None, False, "too few answers")]
    assert store.read_source_models(models) == ["m1", "m2", "m0"]


def test_embeddings_round_trip(tmp_path):
    path = tmp_path / "emb.parquet"
    vectors = np.array([[0.5, -1.0, 2.0], [3.0, 0.25, 0.0]])  # float64 in, float32 out
    store.write_embeddings(["x", "y"], vectors, path)
    ids, back = store.read_embeddings(path)
    assert ids.tolist() == ["x", "y"]
    assert back.dtype == np.float32
    assert back.tolist() == vectors.tolist()


def test_embeddings_with_nan_are_a_clear_error(tmp_path):
    path = tmp_path / "emb.parquet"
    store.write_embeddings(["x", "y", "z"], np.array([[1.0, 0], [np.nan, 1], [0, np.inf]]), path)
    with pytest.raises(InputError, match=r"emb.parquet: 2 vector\(s\) hold NaN or inf, e.g. "
                                         r"instance 'y'"):
        store.read_embeddings(path)


def test_pool_embeddings_follow_pool_order(tmp_path):
    # File a lists a2 before a1 and an extra id; the result is in pool order a1, a2, b1.
    pool = tiny_pool()
    store.write_embeddings(["a2", "zz", "a1"], np.array([[2.0, 0], [9.0, 9], [1.0, 0]]),
                           tmp_path / "a.parquet")
    store.write_embeddings(["b1"], np.array([[3.0, 0]]), tmp_path / "b.parquet")
    out = store.pool_embeddings(pool, {"a": tmp_path / "a.parquet", "b": tmp_path / "b.parquet"})
    assert out.tolist() == [[1.0, 0.0], [2.0, 0.0], [3.0, 0.0]]


def test_pool_embeddings_missing_instance(tmp_path):
    # File b has b9 but not the pool's b1: InputError naming the file and the id.
    pool = tiny_pool()
    store.write_embeddings(["a1", "a2"], np.zeros((2, 2)), tmp_path / "a.parquet")
    store.write_embeddings(["b9"], np.zeros((1, 2)), tmp_path / "b.parquet")
    with pytest.raises(InputError, match=r"b\.parquet: no embedding for 1 instance.*'b1'"):
        store.pool_embeddings(pool, {"a": tmp_path / "a.parquet", "b": tmp_path / "b.parquet"})


def test_pool_embeddings_missing_dataset(tmp_path):
    # No file for pool dataset b: InputError naming it, not a KeyError.
    store.write_embeddings(["a1", "a2"], np.zeros((2, 2)), tmp_path / "a.parquet")
    with pytest.raises(InputError, match=r"pool dataset\(s\) \['b'\]"):
        store.pool_embeddings(tiny_pool(), {"a": tmp_path / "a.parquet"})


def test_neighbours_round_trip(tmp_path):
    # Two queries, L = 3; the second row is padded (-1 / inf).
    neighbours = Neighbours(
        index=np.array([[2, 0, 1], [0, -1, -1]], dtype=np.int64),
        dataset=np.array([[1, 0, 0], [0, -1, -1]], dtype=np.int32),
        distance=np.array([[0.1, 0.25, 0.5], [0.75, np.inf, np.inf]], dtype=np.float32),
    )
    path = tmp_path / "nb.parquet"
    store.write_neighbours(np.array(["q1", "q2"]), neighbours, path)
    ids, back = store.read_neighbours(path)
    assert ids.tolist() == ["q1", "q2"]
    assert (back.index.dtype, back.dataset.dtype, back.distance.dtype) == (
        np.int64, np.int32, np.float32)
    assert back.index.tolist() == [[2, 0, 1], [0, -1, -1]]
    assert back.dataset.tolist() == [[1, 0, 0], [0, -1, -1]]
    np.testing.assert_array_equal(back.distance, neighbours.distance)


def test_ot_matrix_and_row(tmp_path):
    # A distances table as the workflow writes it (extra columns are ignored).
    path = tmp_path / "ot.parquet"
    write_table(pl.DataFrame({"task": ["t1", "t1", "t2"], "dataset": ["d1", "d2", "d1"],
                              "distance": [0.5, 1.5, 2.0], "n_points": [3, 3, 4]}), path)
    assert store.read_ot_matrix(path) == {"t1": {"d1": 0.5, "d2": 1.5}, "t2": {"d1": 2.0}}
    assert store.read_ot_row(path, "t2") == {"d1": 2.0}
    with pytest.raises(InputError, match=r"ot\.parquet: no OT distances from task 't3'"):
        store.read_ot_row(path, "t3")


def test_read_distances_joins_matrix_and_rows_in_order(tmp_path):
    matrix, row = tmp_path / "distances.parquet", tmp_path / "new.parquet"
    write_table(pl.DataFrame({"task_u": [0.1, 0.2], "distance": [0.5, 1.5],
                              "dataset": ["d2", "d1"], "task": ["d1", "d2"]}), matrix)
    write_table(pl.DataFrame({"task": ["new"], "dataset": ["d1"], "distance": [0.7]}), row)
    table = store.read_distances(matrix, row)
    assert table.columns == ["task", "dataset", "distance"]
    assert table.rows() == [("d1", "d2", 0.5), ("d2", "d1", 1.5), ("new", "d1", 0.7)]


def test_ot_matrix_missing_column(tmp_path):
    path = tmp_path / "ot.parquet"
    write_table(pl.DataFrame({"task": ["t1"], "dataset": ["d1"]}), path)
    with pytest.raises(InputError, match=r"missing column\(s\) \['distance'\]"):
        store.read_ot_matrix(path)


def test_cells_round_trip_and_stale_index(tmp_path):
    pool = tiny_pool()
    path = tmp_path / "cells.parquet"
    store.write_cells(pool, np.array([4, 0, 7]), path)
    back = store.read_cells(path, pool)
    assert back.dtype == np.int32 and back.tolist() == [4, 0, 7]
    # Same sizes, other instance ids: built for another pool.
    other = Pool(pool.datasets, pool.dataset_of, np.array(["a1", "a2", "b2"]), pool.models,
                 pool.correct)
    with pytest.raises(InputError, match="built for another pool"):
        store.read_cells(path, other)


def test_artifacts_get_the_mode_a_plain_open_gives(tmp_path):
    # mkstemp makes 0600 files and the rename would keep that: teammates on a shared file
    # system could not read the results.
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    expected = plain.stat().st_mode & 0o777
    if expected == 0o600:
        pytest.skip("the umask (077) gives owner-only files anyway")
    write_table(pl.DataFrame({"a": [1]}), tmp_path / "table.parquet")
    write_text("report", tmp_path / "report.md")
    for name in ("table.parquet", "report.md"):
        assert (tmp_path / name).stat().st_mode & 0o777 == expected, name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain.txt", "report.md",
                                                          "table.parquet"]


def test_a_file_system_that_refuses_chmod_still_gets_the_artifact(tmp_path, monkeypatch):
    def refuse(fd, mode):
        raise PermissionError("chmod not supported")

    monkeypatch.setattr("llmrouter.artifacts.os.fchmod", refuse)
    write_text("report", tmp_path / "report.md")
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"]
    assert (tmp_path / "report.md").read_text() == "report"


def test_an_artifact_reaches_the_disk_before_it_is_in_place(tmp_path, monkeypatch):
    # After a lost node an unflushed file can come back under its name but empty, and
    # Snakemake would count it done: its bytes are flushed, then renamed, then the rename.
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        target = os.readlink(f"/proc/self/fd/{fd}")
        events.append(("fsync", Path(target).name if Path(target).is_file() else "folder"))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", Path(dst).name))
        real_replace(src, dst)

    monkeypatch.setattr("llmrouter.artifacts.os.fsync", fsync)
    monkeypatch.setattr("llmrouter.artifacts.os.replace", replace)
    write_table(pl.DataFrame({"a": [1]}), tmp_path / "table.parquet")
    assert [kind for kind, _ in events] == ["fsync", "replace", "fsync"]
    assert events[0][1].startswith(".table.parquet.") and events[0][1].endswith(".tmp")
    assert events[2] == ("fsync", "folder")


def test_temporary_files_a_killed_writer_left_are_removed_by_the_next_write(tmp_path):
    # SIGKILL skips the writer's cleanup: its temporary file would stay forever.
    from llmrouter.artifacts import atomic_path

    stale, _ = atomic_path(tmp_path / "scores.parquet")  # as a killed writer left it
    live, _ = atomic_path(tmp_path / "other.parquet")  # another job's, being written now
    unrelated = tmp_path / ".notes.tmp"  # not of atomic_path's shape
    unrelated.write_bytes(b"")
    hours_ago = time.time() - 2 * 3600
    for path in (stale, unrelated):
        os.utime(path, (hours_ago, hours_ago))
    write_text("report", tmp_path / "report.md")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [live.name, unrelated.name, "report.md"])


def test_stale_means_older_than_a_file_the_file_system_just_made(tmp_path, monkeypatch):
    # On a shared file system the server sets mtimes: a node whose clock runs two hours ahead
    # must not take another job's fresh temporary file for stale.
    from llmrouter.artifacts import atomic_path

    live, _ = atomic_path(tmp_path / "other.parquet")
    ahead = time.time() + 2 * 3600
    monkeypatch.setattr(time, "time", lambda: ahead)
    write_text("report", tmp_path / "report.md")
    assert live.exists()
