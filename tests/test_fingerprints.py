"""Fingerprints of local embedding models (llmrouter/fingerprints.py)."""

import json
import os
import time

import pytest

from llmrouter import fingerprints
from llmrouter.artifacts import InputError
from llmrouter.embedding import EmbeddingSettings


def checkpoint(tmp_path):
    folder = tmp_path / "checkpoint"
    (folder / "1_Pooling").mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"weights v1")
    (folder / "1_Pooling" / "config.json").write_text("{}")
    (folder / ".cache").mkdir()
    (folder / ".cache" / "download.lock").write_text("a")
    return folder


def test_a_local_model_folder_is_named_by_its_files(tmp_path):
    folder = checkpoint(tmp_path)
    first = EmbeddingSettings(model=str(folder))
    assert first.fingerprint and f"-f{first.fingerprint}-" in first.key()
    # a hidden file (a download's lock) is not the model
    (folder / ".cache" / "download.lock").write_text("b")
    assert EmbeddingSettings(model=str(folder)).key() == first.key()
    # retrained in place: the same name, other weights, another cache folder
    (folder / "model.safetensors").write_bytes(b"weights v2, longer")
    second = EmbeddingSettings(model=str(folder))
    assert second.key() != first.key()
    (folder / "1_Pooling" / "config.json").write_text('{"pooling_mode_cls_token": true}')
    assert EmbeddingSettings(model=str(folder)).key() not in (first.key(), second.key())
    # names of no folder here are not read: hub names, the packaged model
    for name in ["all-MiniLM-L6-v2", "org/model", str(tmp_path / "absent")]:
        assert EmbeddingSettings(model=name).fingerprint is None


def test_new_contents_with_the_old_size_and_time_give_another_fingerprint(tmp_path,
                                                                          monkeypatch):
    # cp -p, rsync -t and touch -r set a file's modification time back; its change time still
    # moves, and the memo is keyed on it ...
    folder = checkpoint(tmp_path)
    memo = tmp_path / "memo"
    memo.mkdir()
    # Kept at once (no racy wait); the rewrite below comes 50 ms later, past a coarse clock's
    # tick on a local disk, so its change time moves.
    monkeypatch.setattr(fingerprints, "RACY_SECONDS", 0.0)
    before = fingerprints.model_fingerprint(str(folder), memo_dir=memo)
    assert fingerprints.memo_path(memo, folder).is_file()
    time.sleep(0.05)
    target = folder / "model.safetensors"
    stat = target.stat()
    target.write_bytes(b"weights v9")  # the same size, the same inode
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert (target.stat().st_mtime_ns, target.stat().st_ino) == (stat.st_mtime_ns, stat.st_ino)
    assert fingerprints.model_fingerprint(str(folder), memo_dir=memo) != before
    files = fingerprints.model_files(folder)
    kept = tmp_path / "kept.json"
    kept.write_text(json.dumps({"fingerprint": "0123456789ab", "files": files}))
    assert fingerprints.read_memo(kept, files) == "0123456789ab"
    for field in range(1, 5):  # size, modification, change, inode
        moved = tuple((*f[:field], f[field] + 1, *f[field + 1:]) for f in files)
        assert fingerprints.read_memo(kept, moved) is None
    # ... and within a tick of a coarse clock, where it may not move, none is kept (is_racy)
    monkeypatch.undo()
    now = max(max(f[2], f[3]) for f in files)
    assert fingerprints.is_racy(files, now + int(fingerprints.RACY_SECONDS * 1e9) - 1)
    assert not fingerprints.is_racy(files, now + int(fingerprints.RACY_SECONDS * 1e9) + 1)


def test_the_fingerprint_is_kept_for_the_next_process(tmp_path, monkeypatch):
    # On SLURM every job parses the Snakefile again: gigabytes of weights read at every start.
    folder = checkpoint(tmp_path)
    memo = tmp_path / "memo"
    # a folder that does not exist yet is not made (a dry run creates nothing) ...
    fingerprints.model_fingerprint(str(folder), memo_dir=memo)
    assert not memo.exists()
    memo.mkdir()
    # ... nor is a fingerprint kept while a file changed within RACY_SECONDS: its next change, as
    # soon after, may leave its stat as it was
    taken = fingerprints.model_fingerprint(str(folder), memo_dir=memo)
    assert not fingerprints.memo_path(memo, folder).exists()
    monkeypatch.setattr(fingerprints, "RACY_SECONDS", 0.0)
    assert fingerprints.model_fingerprint(str(folder), memo_dir=memo) == taken
    assert fingerprints.memo_path(memo, folder).is_file()
    fingerprints._kept_fingerprint.cache_clear()  # as in a new process

    def unread(*args):
        raise AssertionError("the files were read again")

    monkeypatch.setattr(fingerprints, "_kept_fingerprint", unread)
    assert fingerprints.model_fingerprint(str(folder), memo_dir=memo) == taken
    # a memo cut short, or naming no fingerprint, is taken again and rewritten, not trusted
    for broken in ['{"fingerprint": ', '{"fingerprint": null, "files": []}']:
        fingerprints.memo_path(memo, folder).write_text(broken)
        assert fingerprints.read_memo(fingerprints.memo_path(memo, folder),
                                 fingerprints.model_files(folder)) is None
        monkeypatch.setattr(fingerprints, "_kept_fingerprint", fingerprints.files_fingerprint)
        assert fingerprints.model_fingerprint(str(folder), memo_dir=memo) == taken
        assert fingerprints.read_memo(fingerprints.memo_path(memo, folder),
                                 fingerprints.model_files(folder)) == taken


def test_symlinked_folders_are_read_once_and_a_loop_ends(tmp_path):
    # A folder linked in (a shared module, a Hugging Face snapshot) is part of the model.
    folder = checkpoint(tmp_path)
    shared = tmp_path / "shared_transformer"
    shared.mkdir()
    (shared / "model.bin").write_bytes(b"a")
    (folder / "0_Transformer").symlink_to(shared, target_is_directory=True)
    (folder / "loop").symlink_to(folder, target_is_directory=True)
    names = [entry[0] for entry in fingerprints.model_files(folder)]
    assert names == ["0_Transformer/model.bin", "1_Pooling/config.json", "model.safetensors"]
    before = fingerprints.model_fingerprint(str(folder))
    (shared / "model.bin").write_bytes(b"bb")
    assert fingerprints.model_fingerprint(str(folder)) != before


def test_an_unreadable_model_file_is_named(tmp_path, monkeypatch):
    # A file removed between listing the folder and reading it (a trainer saving anew)
    folder = checkpoint(tmp_path)
    listed = fingerprints.model_files(folder)
    (folder / "model.safetensors").unlink()
    monkeypatch.setattr(fingerprints, "model_files", lambda _: listed)
    with pytest.raises(InputError, match=r"embedding.model .*checkpoint': cannot read the "
                                         r"model's files .*model.safetensors"):
        fingerprints.model_fingerprint(str(folder))


def test_a_folder_that_cannot_be_listed_is_an_error_not_left_out(tmp_path, monkeypatch):
    # os.walk leaves out, without a word, a folder it cannot list: its files were missing
    # from the fingerprint.
    folder = checkpoint(tmp_path)
    real_scandir = os.scandir

    def refuse(path):
        if str(path).endswith("1_Pooling"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", refuse)
    with pytest.raises(InputError, match="cannot read the model's files .*1_Pooling"):
        fingerprints.model_fingerprint(str(folder))


def test_a_model_path_from_home_is_fingerprinted_and_loaded_alike(tmp_path, monkeypatch):
    # sentence-transformers takes "~/checkpoint" for a hub name: the folder fingerprinted
    # must be the one loaded.
    from llmrouter.embedding import resolve_model_path

    monkeypatch.setenv("HOME", str(tmp_path))
    folder = checkpoint(tmp_path)
    assert fingerprints.model_folder("~/checkpoint") == folder
    assert resolve_model_path("~/checkpoint") == str(folder)
    assert resolve_model_path("org/model") == "org/model"
