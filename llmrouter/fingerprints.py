"""Fingerprints of embedding models given as local folders (the cache key's `-f` part).

A folder's name says nothing of what is in it: without a fingerprint, a checkpoint retrained
in place would be served the old checkpoint's vectors from the cache. The fingerprint is a
SHA-256 of the folder's files (their relative paths and contents, hidden files aside). Reading
gigabytes of weights at every start would cost seconds per job (on SLURM each job parses the
Snakefile again), so a fingerprint is kept beside the cache under the files' stat (size, times
of modification and change, inode) and read again only when one moves (a chmod or a hard link
moves the change time too). The change time cannot be set back (touch -r, cp -p and rsync -t
set the modification time alone), so new contents give another stat, except within one tick of
the file system's clock (a few ms on Linux before 6.13, seconds on some network file systems):
as git does with its index, a fingerprint is never kept while a file changed less than
RACY_SECONDS ago.

The packaged model's files are fixed by its package, and a hub name's by the hub (to pin one,
download it to a folder and name the folder): neither is read.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import time
from pathlib import Path

from llmrouter.artifacts import InputError, write_text

# A file's (relative path, size, modification ns, change ns, inode).
FileStat = tuple[str, int, int, int, int]
DIGITS = 12
MEMO_FOLDER = "model_fingerprints"
# A file changed this recently may change again without its stat moving: no fingerprint kept.
RACY_SECONDS = 3.0


def model_folder(model: str, packaged: frozenset[str] | set[str] = frozenset()) -> Path | None:
    """The local folder that `model` names (as sentence-transformers reads it: an existing
    folder wins over a hub name; `~` expanded, as embedding.resolve_model_path does), or None
    for a hub name or one of the `packaged` names."""
    folder = Path(model).expanduser()
    return None if model in packaged or not folder.is_dir() else folder


def model_files(folder: Path) -> tuple[FileStat, ...]:
    """Every file under `folder` but hidden ones (a download's .cache, .git), by relative
    path, with its stat. Symlinked folders are followed (a Hugging Face snapshot links its
    files), each real folder once, so a link back up cannot loop."""
    found: list[FileStat] = []
    seen: set[tuple[int, int]] = set()

    def unreadable(error: OSError) -> None:
        raise error  # os.walk would leave the folder out, and its files with it

    for root, dirs, files in os.walk(folder, followlinks=True, onerror=unreadable):
        real = os.stat(root)
        if (real.st_dev, real.st_ino) in seen:
            dirs[:] = []
            continue
        seen.add((real.st_dev, real.st_ino))
        dirs[:] = sorted(name for name in dirs if not name.startswith("."))
        for name in files:
            if name.startswith("."):
                continue
            path = Path(root) / name
            stat = path.stat()
            found.append((path.relative_to(folder).as_posix(), stat.st_size, stat.st_mtime_ns,
                          stat.st_ctime_ns, stat.st_ino))
    return tuple(sorted(found))


def is_racy(files: tuple[FileStat, ...], now_ns: int) -> bool:
    """Whether any of `files` changed less than RACY_SECONDS before `now_ns` (or after it,
    by another machine's clock): its stat may not move when it changes again."""
    limit = now_ns - int(RACY_SECONDS * 1e9)
    return any(max(mtime, ctime) >= limit for _, _, mtime, ctime, _ in files)


def files_fingerprint(folder: str, files: tuple[FileStat, ...]) -> str:
    """Fingerprint of the `files` (model_files) of `folder`: DIGITS hex digits of a SHA-256
    over each one's relative path and the SHA-256 of its contents."""
    digest = hashlib.sha256()
    for name, *_ in files:
        digest.update(name.encode() + b"\0")
        with open(Path(folder) / name, "rb") as handle:
            digest.update(hashlib.file_digest(handle, "sha256").digest())
    return digest.hexdigest()[:DIGITS]


# The same within a process, for as long as the stats are the same (not racy: see is_racy).
_kept_fingerprint = functools.cache(files_fingerprint)


def memo_path(memo_dir: str | Path, folder: Path) -> Path:
    """Where the fingerprint of `folder` is kept under `memo_dir`: one small file per folder."""
    name = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]
    return Path(memo_dir) / MEMO_FOLDER / f"{name}.json"


def model_fingerprint(model: str, packaged: frozenset[str] | set[str] = frozenset(),
                      memo_dir: str | Path | None = None) -> str | None:
    """Fingerprint of the files of a model given as a local folder; None for any other name.

    memo_dir: a folder (the embedding cache's) that keeps each fingerprint with the stats it
    was taken from, for the next process; used only once it exists (a dry run creates no
    folder, but may add a memo file to an existing cache). Raises InputError when the model's
    files cannot be read.
    """
    folder = model_folder(model, packaged)
    if folder is None:
        return None
    try:
        files = model_files(folder)
        racy = is_racy(files, time.time_ns())
        memo = (memo_path(memo_dir, folder)
                if memo_dir is not None and Path(memo_dir).is_dir() and not racy else None)
        kept = read_memo(memo, files) if memo is not None else None
        if kept is not None:
            return kept
        fingerprint = (files_fingerprint(str(folder), files) if racy
                       else _kept_fingerprint(str(folder), files))
    except OSError as error:  # a file removed or unreadable while the folder was read
        raise InputError(f"embedding.model {model!r}: cannot read the model's files "
                         f"({error})") from error
    if memo is not None:
        try:
            write_text(json.dumps({"folder": str(folder.resolve()), "fingerprint": fingerprint,
                                   "files": files}), memo)
        except OSError:
            pass  # a read-only cache: the next process reads the files again
    return fingerprint


def read_memo(memo: Path, files: tuple[FileStat, ...]) -> str | None:
    """The fingerprint kept in `memo` when it was taken from exactly these `files`' stats, else
    None: no memo, another model's, one cut short or unreadable (a shared cache's file of
    another user) is a miss, never an error."""
    try:
        kept = json.loads(memo.read_text())
        fingerprint = kept["fingerprint"]
        same = [tuple(entry) for entry in kept["files"]] == list(files)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return fingerprint if same and isinstance(fingerprint, str) and re.fullmatch(
        f"[0-9a-f]{{{DIGITS}}}", fingerprint) else None
