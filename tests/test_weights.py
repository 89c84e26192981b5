"""Fingerprints of local embedding models (llmrouter/weights.py)."""

import os

import pytest

from llmrouter import weights
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
    assert first.weights and f"-w{first.weights}-" in first.key()
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
        assert EmbeddingSettings(model=name).weights is None


def test_new_contents_with_the_old_size_and_time_give_another_fingerprint(tmp_path):
    # cp -p, rsync -t and touch -r set a file's modification time back; its change time
    # (and a copy's inode) still moves, which the remembered digests are keyed on.
    folder = checkpoint(tmp_path)
    before = weights.model_weights(str(folder), memo_dir=tmp_path / "memo")
    target = folder / "model.safetensors"
    stat = target.stat()
    target.write_bytes(b"weights v9")  # the same size
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert target.stat().st_mtime_ns == stat.st_mtime_ns
    assert weights.model_weights(str(folder)) != before
    assert weights.model_weights(str(folder), memo_dir=tmp_path / "memo") != before


def test_the_fingerprint_is_kept_for_the_next_process(tmp_path, monkeypatch):
    # On SLURM every job parses the Snakefile again: gigabytes of weights read at every start.
    folder = checkpoint(tmp_path)
    memo = tmp_path / "memo"
    taken = weights.model_weights(str(folder), memo_dir=memo)
    assert weights.memo_path(memo, folder).is_file()
    weights.files_digest.cache_clear()  # as in a new process

    def unread(*args):
        raise AssertionError("the files were read again")

    monkeypatch.setattr(weights, "files_digest", unread)
    assert weights.model_weights(str(folder), memo_dir=memo) == taken
    # a memo cut short is taken again, not trusted
    weights.memo_path(memo, folder).write_text('{"weights": ')
    monkeypatch.undo()
    assert weights.model_weights(str(folder), memo_dir=memo) == taken


def test_symlinked_folders_are_read_once_and_a_loop_ends(tmp_path):
    # A folder linked in (a shared module, a Hugging Face snapshot) is part of the model.
    folder = checkpoint(tmp_path)
    shared = tmp_path / "shared_transformer"
    shared.mkdir()
    (shared / "model.bin").write_bytes(b"a")
    (folder / "0_Transformer").symlink_to(shared, target_is_directory=True)
    (folder / "loop").symlink_to(folder, target_is_directory=True)
    names = [entry[0] for entry in weights.model_files(folder)]
    assert names == ["0_Transformer/model.bin", "1_Pooling/config.json", "model.safetensors"]
    before = weights.model_weights(str(folder))
    (shared / "model.bin").write_bytes(b"bb")
    assert weights.model_weights(str(folder)) != before


def test_an_unreadable_model_file_is_named(tmp_path, monkeypatch):
    folder = checkpoint(tmp_path)

    def vanished(*args):
        raise FileNotFoundError(2, "No such file or directory", str(folder / "model.safetensors"))

    monkeypatch.setattr(weights, "files_digest", vanished)
    with pytest.raises(InputError, match=r"embedding.model .*checkpoint': cannot read the "
                                         r"model's files .*model.safetensors"):
        weights.model_weights(str(folder))
