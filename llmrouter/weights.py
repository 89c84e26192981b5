"""Fingerprints of embedding models given as local folders (the cache key's `-w` part).

A folder's name says nothing of what is in it: without a fingerprint, a checkpoint retrained
in place would be served the old checkpoint's vectors from the cache. The fingerprint is a
SHA-256 of the folder's files (their relative paths and contents, hidden files aside). Reading
gigabytes of weights at every start would cost seconds per job (on SLURM each job parses the
Snakefile again), so a digest is kept beside the cache under the files' stat (size, times of
modification and change, inode) and read again only when one moves. The change time cannot be
set back (touch -r, cp -p and rsync -t set the modification time alone), so new contents always
give another stat.

The packaged model's files are fixed by its package, and a hub name's by the hub (to pin one,
download it to a folder and name the folder): neither is read.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path

from llmrouter.artifacts import InputError, write_text

# A file's (relative path, size, modification ns, change ns, inode).
FileStat = tuple[str, int, int, int, int]
DIGITS = 12
MEMO_FOLDER = "model_fingerprints"


def model_folder(model: str, packaged: frozenset[str] | set[str] = frozenset()) -> Path | None:
    """The local folder that `model` names (as sentence-transformers reads it: an existing
    folder wins over a hub name), or None for a hub name or one of the `packaged` names."""
    folder = Path(model).expanduser()
    return None if model in packaged or not folder.is_dir() else folder


def model_files(folder: Path) -> tuple[FileStat, ...]:
    """Every file under `folder` but hidden ones (a download's .cache, .git), by relative
    path, with its stat. Symlinked folders are followed (a Hugging Face snapshot links its
    files), each real folder once, so a link back up cannot loop."""
    found: list[FileStat] = []
    seen: set[tuple[int, int]] = set()
    for root, dirs, files in os.walk(folder, followlinks=True):
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


@functools.cache
def files_digest(folder: str, files: tuple[FileStat, ...]) -> str:
    """Fingerprint of the `files` (model_files) of `folder`: DIGITS hex digits of a SHA-256
    over each one's relative path and the SHA-256 of its contents. Cached in the process for
    as long as the stats are the same."""
    digest = hashlib.sha256()
    for name, *_ in files:
        digest.update(name.encode() + b"\0")
        with open(Path(folder) / name, "rb") as handle:
            digest.update(hashlib.file_digest(handle, "sha256").digest())
    return digest.hexdigest()[:DIGITS]


def memo_path(memo_dir: str | Path, folder: Path) -> Path:
    """Where the fingerprint of `folder` is kept under `memo_dir`: one small file per folder."""
    name = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]
    return Path(memo_dir) / MEMO_FOLDER / f"{name}.json"


def model_weights(model: str, packaged: frozenset[str] | set[str] = frozenset(),
                  memo_dir: str | Path | None = None) -> str | None:
    """Fingerprint of the files of a model given as a local folder; None for any other name.

    memo_dir: a folder (the embedding cache's) that keeps each fingerprint with the stats it
    was taken from, for the next process. Raises InputError when the files cannot be read.
    """
    folder = model_folder(model, packaged)
    if folder is None:
        return None
    try:
        files = model_files(folder)
        memo = memo_path(memo_dir, folder) if memo_dir is not None else None
        if memo is not None and memo.is_file():
            try:
                kept = json.loads(memo.read_text())
                if [tuple(entry) for entry in kept["files"]] == list(files):
                    return str(kept["weights"])
            except (ValueError, KeyError, TypeError):
                pass  # a memo from elsewhere or cut short: taken again below
        weights = files_digest(str(folder), files)
    except OSError as error:  # a file removed or unreadable while the folder was read
        raise InputError(f"embedding.model {model!r}: cannot read the model's files "
                         f"({error})") from error
    if memo is not None:
        try:
            write_text(json.dumps({"folder": str(folder.resolve()), "weights": weights,
                                   "files": files}), memo)
        except OSError:
            pass  # a read-only cache: the next process reads the files again
    return weights
