"""Reading and writing the workflow's Parquet artifacts atomically.

Every artifact is written to a temporary file beside its target and renamed into place
(`commit`), so a killed job never leaves a half-written file that a later run would trust.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq


class InputError(ValueError):
    """Bad user input: the message names the file and what is wrong with it."""


# Byte-order marks of UTF-16 (a spreadsheet's "Unicode text" export) and UTF-32 (other tools),
# longest first (UTF-32's little-endian mark starts with UTF-16's).
WIDE_BOMS = ((b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"),
             (b"\xff\xfe", "UTF-16"), (b"\xfe\xff", "UTF-16"))


def check_not_wide_text(path: str | Path, what: str) -> None:
    """InputError when the file starts with a UTF-16 or UTF-32 byte-order mark: polars reads
    such a CSV without complaint as one garbled column, which would then be reported missing."""
    with open(path, "rb") as handle:
        head = handle.read(4)
    for mark, encoding in WIDE_BOMS:
        if head.startswith(mark):
            raise InputError(f"{path}: {what} is {encoding} text, not UTF-8; save it as UTF-8 "
                             "(in a spreadsheet: CSV UTF-8)")


def check_unicode(text: str, where: str) -> None:
    """InputError `<where> is not valid Unicode` when `text` holds a lone surrogate: JSON
    allows "\\ud800", but UTF-8, and so polars, Parquet and the logs, cannot store it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        # The error's own message quotes the surrogate, which a UTF-8 log cannot write.
        raise InputError(f"{where} is not valid Unicode ({error.reason} at character "
                         f"{error.start})") from None


def umask_mode() -> int:
    """0o666 less the process's umask: the mode open() gives a new file."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


# Read once, at import: os.umask can only be read by setting it, which is not thread-safe.
FILE_MODE = umask_mode()


# atomic_path's temporary files: "." + the target's name + "." + mkstemp's random part +
# TEMP_SUFFIX.
TEMP_SUFFIX = ".tmp"
TEMP_NAME = re.compile(r"\..+\.[a-z0-9_]+" + re.escape(TEMP_SUFFIX))
# A temporary file lives as long as one write; one this old was left by a killed job (SIGKILL
# or a lost node skip the cleanup), and nothing else would ever remove it.
STALE_TEMP_S = 3600.0


def remove_stale_temps(folder: Path, now: float, older_than_s: float = STALE_TEMP_S,
                       keep: Path | None = None) -> list[Path]:
    """Delete the temporary files of atomic_path in `folder` (but `keep`) last modified over
    `older_than_s` before `now`; returns them. A file another process removes first is
    skipped. `now` is a time of the folder's file system (the mtime of a file just made): on a
    shared one the server sets mtimes, and a node whose clock runs an hour ahead would
    otherwise take every other job's temporary file for stale."""
    removed = []
    cutoff = now - older_than_s
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if not TEMP_NAME.fullmatch(entry.name) or (keep and entry.name == keep.name):
            continue
        try:
            if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < cutoff:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue
    return removed


def atomic_path(path: str | Path) -> tuple[Path, Path]:
    """Return (temporary path, final path) in the same folder, so rename is atomic; the
    writer then calls `commit`. Stale temporary files of the folder are removed on the way.

    The temporary file gets the mode a plain open() would give (FILE_MODE), not mkstemp's
    owner-only 0600, which the rename would carry over to the artifact: on a shared cluster
    file system the team must be able to read the results.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=TEMP_SUFFIX, dir=final.parent)
    try:
        now = os.fstat(fd).st_mtime
        try:
            os.fchmod(fd, FILE_MODE)
        except OSError:
            pass  # some network file systems refuse chmod: an owner-only file beats no file
    finally:
        os.close(fd)
    remove_stale_temps(final.parent, now, keep=Path(tmp))
    return Path(tmp), final


def _fsync_folder(folder: Path) -> None:
    """Flush a folder's entries (the rename) to disk; a file system that cannot is skipped."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems (and every folder on Windows) refuse it
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    """Flush a file's bytes to disk. Opened for writing where allowed: SMB servers (and
    Windows) flush only a handle that may write; Linux flushes through any."""
    try:
        fd = os.open(path, os.O_RDWR)
    except PermissionError:  # a umask that leaves the owner no write bit
        fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def commit(tmp: Path, final: Path) -> None:
    """Move the finished temporary file `tmp` to `final`, durably: its bytes, then the
    rename, reach the disk before this returns. Without that, after a lost node (power, a
    kernel crash) the file system may show the artifact under its name but empty, and
    Snakemake, which only checks that an output exists and is newer than its inputs, would
    take it as done."""
    _fsync_file(tmp)
    os.replace(tmp, final)
    _fsync_folder(final.parent)


def write_table(table: pa.Table | pl.DataFrame, path: str | Path) -> None:
    """Write a table to Parquet (zstd) atomically."""
    if isinstance(table, pl.DataFrame):
        table = table.to_arrow()
    tmp, final = atomic_path(path)
    try:
        pq.write_table(table, tmp, compression="zstd")
        commit(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(text: str, path: str | Path) -> None:
    """Write a text file atomically."""
    tmp, final = atomic_path(path)
    try:
        tmp.write_text(text)
        commit(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def matrix_column(matrix: np.ndarray) -> pa.FixedSizeListArray:
    """Pack a 2-d array (n_rows, width) as one fixed-size-list column (one list per row)."""
    matrix = np.ascontiguousarray(matrix)
    flat = pa.array(matrix.reshape(-1))
    return pa.FixedSizeListArray.from_arrays(flat, matrix.shape[1])


def column_matrix(table: pa.Table, name: str) -> np.ndarray:
    """Unpack a fixed-size-list column written by `matrix_column` into (n_rows, width)."""
    column = table.column(name).combine_chunks()
    width = column.type.list_size
    values = column.flatten().to_numpy(zero_copy_only=False)
    return values.reshape(len(column), width)


@contextmanager
def parquet_file(path: str | Path, required: list[str] | None = None
                 ) -> Iterator[pq.ParquetFile]:
    """An open Parquet file, to read some of its columns (Parquet stores columns apart: the
    others are never read from disk). Fails with the file's name when it is unreadable, when
    a read inside the block fails, or when it lacks a `required` column."""
    try:
        with pq.ParquetFile(path) as parquet:
            names = parquet.schema_arrow.names
            missing = [c for c in (required or []) if c not in names]
            if missing:
                raise InputError(f"{path}: missing column(s) {missing}; has {names}")
            yield parquet
    except (OSError, pa.ArrowInvalid) as error:
        raise InputError(f"{path}: cannot read as Parquet ({error})") from error


def read_table(path: str | Path, required: list[str] | None = None) -> pa.Table:
    """Read a Parquet file, failing with the file's name when it is unreadable or lacks columns."""
    with parquet_file(path, required) as parquet:
        return parquet.read()
