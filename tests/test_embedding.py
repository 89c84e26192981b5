"""Embedding: the content-addressed cache and the choice of precision."""

import hashlib
import io
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest

from llmrouter import embedding, fingerprints
from llmrouter.artifacts import (InputError, matrix_column, parquet_file, read_table,
                                 write_table)
from llmrouter.embedding import (EmbeddingSettings, cache_root, embed_texts, read_cache,
                                 text_hash, write_shard)


def cpuinfo(tmp_path: Path, flags: str) -> Path:
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nflags\t\t: fpu sse2 avx2 {flags}\n\n")
    return path


def test_fast_bfloat16_is_detected_from_cpu_flags(tmp_path):
    assert embedding.cpu_has_fast_bfloat16(cpuinfo(tmp_path, "avx512f amx_bf16 amx_tile"))
    assert embedding.cpu_has_fast_bfloat16(cpuinfo(tmp_path, "avx512f avx512_bf16"))
    assert not embedding.cpu_has_fast_bfloat16(cpuinfo(tmp_path, "avx512f avx512_vnni"))
    assert not embedding.cpu_has_fast_bfloat16(tmp_path / "absent")


def test_auto_precision_resolves_by_cpu(tmp_path):
    assert embedding.resolve_precision("auto", cpuinfo(tmp_path, "amx_bf16")) == "bfloat16"
    assert embedding.resolve_precision("auto", cpuinfo(tmp_path, "avx2")) == "float32"
    assert embedding.resolve_precision("float32", cpuinfo(tmp_path, "amx_bf16")) == "float32"
    with pytest.raises(InputError, match="precision"):
        embedding.resolve_precision("int8")


def test_later_jobs_take_the_precision_the_benchmark_texts_were_embedded_with():
    configured = {"model": "all-MiniLM-L6-v2", "batch_size": 8, "max_seq_length": 256}
    for precision in ("float32", "bfloat16"):
        recorded = EmbeddingSettings(**configured, precision=precision).key()
        # `auto` follows the index whatever this node's CPU would choose
        chosen = embedding.settings_of_index({**configured, "precision": "auto"},
                                             [recorded] * 3, "index.parquet")
        assert chosen.precision == precision and chosen.key() == recorded
    bf16 = EmbeddingSettings(**configured, precision="bfloat16").key()
    with pytest.raises(InputError, match="index.parquet.*forcerun embed_all_texts"):
        embedding.settings_of_index({**configured, "precision": "float32"}, [bf16], "index.parquet")
    with pytest.raises(InputError, match="index.parquet.*forcerun embed_all_texts"):
        embedding.settings_of_index({**configured, "batch_size": 16, "precision": "auto"}, [bf16],
                                    "index.parquet")
    with pytest.raises(InputError, match="one embedding setting"):
        embedding.settings_of_index(configured, [bf16, bf16 + "x"], "index.parquet")


def test_embedding_index_lists_each_instance_once_with_its_hash_and_setting():
    # Columns in another order and one more (label); an instance repeated within a table keeps
    # its first text; the same instance_id in another dataset is another instance.
    first = pl.DataFrame({"text": ["q1", "q1 again", "q2", "q4"], "label": [0, 1, 0, 1],
                          "instance_id": ["1", "1", "2", "1"],
                          "dataset": ["algebra"] * 3 + ["chemistry"]})
    second = pl.DataFrame({"dataset": ["biology", "biology"], "instance_id": ["1", "1"],
                           "text": ["q2", "q3"]})
    texts = embedding.index_texts(iter([first, second]))
    assert texts.rows() == [("algebra", "1", "q1"), ("algebra", "2", "q2"),
                            ("chemistry", "1", "q4"), ("biology", "1", "q2")]
    settings = EmbeddingSettings(precision="bfloat16")
    index = embedding.embedding_index(texts, settings)
    assert index.columns == ["dataset", "instance_id", "text_hash", "setting"]
    assert index["text_hash"].to_list() == [hashlib.sha256(t.encode()).hexdigest()
                                            for t in ["q1", "q2", "q4", "q2"]]
    # What the index records is what its reader takes back.
    chosen = embedding.settings_of_index({"precision": "auto"}, index["setting"].to_list(),
                                         "index.parquet")
    assert chosen == settings


def test_cache_key_names_every_setting_that_changes_vectors():
    base = EmbeddingSettings()
    assert base.key() != EmbeddingSettings(precision="bfloat16").key()
    assert base.key() != EmbeddingSettings(max_seq_length=128).key()
    assert base.key() != EmbeddingSettings(model="other/model").key()
    assert base.key() != EmbeddingSettings(batch_size=64).key()  # bfloat16 rounds by batch rows


def test_cache_folders_of_two_models_never_coincide():
    # Two checkpoints whose paths differ only before their last 60 characters, or only in a
    # character a folder name cannot hold, once shared a folder and so each other's vectors.
    tail = "output/sentence-transformers-all-MiniLM-L6-v2-domain-adapted-final"
    names = [f"/scratch/run-A/{tail}", f"/scratch/run-B/{tail}", "org/model", "org model",
             "./org/model", "all-MiniLM-L6-v2"]
    keys = [EmbeddingSettings(model=name).key() for name in names]
    assert len(set(keys)) == len(names), keys
    # a hub name keeps its folder, so existing caches stay valid
    assert keys[-1] == "all-MiniLM-L6-v2-float32-len256-pad8-batch8"
    assert keys[2] == "org_model-float32-len256-pad8-batch8"
    assert all(len(key) < 120 for key in keys)
    assert EmbeddingSettings(precision="auto").precision in ("float32", "bfloat16")


def test_a_model_retrained_in_place_is_embedded_again(tmp_path, model_checkpoint):
    # The cache key named the model by its name alone: a checkpoint retrained in the same
    # folder was served the old checkpoint's vectors from the cache.
    from safetensors.numpy import load_file, save_file

    folder = model_checkpoint
    texts = ["What is 2 + 2?", "Name the largest planet."]
    before = embed_texts(texts, EmbeddingSettings(model=str(folder)), tmp_path / "cache",
                         progress=False)
    tensors = load_file(folder / "model.safetensors")
    name = "embeddings.word_embeddings.weight"
    tensors[name] = tensors[name] + np.random.default_rng(0).normal(
        0, 0.05, tensors[name].shape).astype(tensors[name].dtype)
    save_file(tensors, folder / "model.safetensors")
    after = embed_texts(texts, EmbeddingSettings(model=str(folder)), tmp_path / "cache",
                        progress=False)
    assert np.abs(after - before).max() > 1e-3
    # Two settings: before and after (the fingerprints' memo folder aside, there when more
    # than RACY_SECONDS passed between the copy and the check)
    settings = [path.name for path in (tmp_path / "cache").iterdir()
                if path.name != fingerprints.MEMO_FOLDER]
    assert len(settings) == 2


def test_a_model_changed_after_planning_is_not_filed_under_the_planned_key(
        tmp_path, model_checkpoint):
    # The workflow plans with a fingerprint (embedding_params) and its jobs trust it, so a job
    # reading the cache alone reads no weights; one that loads the model checks it first.
    folder = model_checkpoint
    planned = embedding.embedding_params({"model": str(folder), "cache_dir": "c"}, tmp_path)
    assert planned == {"model": str(folder),
                       "fingerprint": EmbeddingSettings(model=str(folder)).fingerprint}
    assert embedding.embedding_params({"cache_dir": "c", "batch_size": 4}) == {"batch_size": 4}
    with open(folder / "README.md", "a") as readme:
        readme.write("retrained\n")
    settings = EmbeddingSettings(**planned)
    assert settings.fingerprint == planned["fingerprint"]
    with pytest.raises(InputError, match="its files changed after the run was planned"):
        embed_texts(["a new question"], settings, tmp_path / "cache", progress=False)
    assert not list((tmp_path / "cache").glob("*/*.parquet"))


@pytest.mark.slow
def test_the_cache_is_the_configured_folder_else_under_resources_dir():
    assert cache_root({"embedding": {"cache_dir": "/data/vectors"}, "resources_dir": "r"}) == (
        "/data/vectors")
    assert cache_root({"embedding": {}, "resources_dir": "res"}) == "res/embedding_cache"


def test_cache_embeds_each_text_once(tmp_path, monkeypatch):
    loads = []
    real_load = embedding.load_model

    def counting_load(*args, **kwargs):
        loads.append(1)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(embedding, "load_model", counting_load)
    settings = EmbeddingSettings()
    texts = ["What is 2 + 2?", "Name the largest planet.", "What is 2 + 2?"]
    terminal = io.StringIO()
    first = embed_texts(texts, settings, tmp_path, progress_to=terminal)
    # the bars and the summary go to the stream given (a job's terminal, not its log)
    assert re.search(r"embedding: 2 texts in [\d.]+ s \(\d+ texts/s, all-MiniLM",
                     terminal.getvalue())
    assert re.search(r"tokenising: 100%.* 2/2 ", terminal.getvalue())
    assert first.shape == (3, 384) and first.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(first[0], first[2])
    assert len(loads) == 1
    # a re-run reads everything from the cache: no model is loaded
    again = embed_texts(texts[::-1], settings, tmp_path, progress=False)
    np.testing.assert_array_equal(again, first[::-1])
    assert len(loads) == 1
    # a new text is the only one embedded; the old ones keep their cached vectors
    shards = set((tmp_path / settings.key()).glob("*.parquet"))
    more = embed_texts(["Which gas do plants absorb?", texts[1]], settings, tmp_path,
                       progress=False)
    assert len(loads) == 2
    np.testing.assert_array_equal(more[1], first[1])
    new = set((tmp_path / settings.key()).glob("*.parquet")) - shards
    assert len(new) == 1


def test_texts_cut_at_max_seq_length_are_counted_in_the_summary(tmp_path):
    # sentence-transformers cuts them without a word: 1,186 of helm_mmlu's 13,937 texts, 44% of
    # professional_law's, about 70% of each history subject's
    terminal = io.StringIO()
    long_text = "The history of the Roman roads, province by province. " * 40
    embed_texts(["Name the largest planet.", long_text], EmbeddingSettings(), tmp_path,
                progress_to=terminal)
    assert "embedding: 2 texts in" in terminal.getvalue()
    assert ("1 of them longer than max_seq_length 256 tokens: their first tokens alone are "
            "embedded") in terminal.getvalue()
    terminal = io.StringIO()
    embed_texts(["Which gas do plants absorb?"], EmbeddingSettings(), tmp_path,
                progress_to=terminal)
    assert "longer than" not in terminal.getvalue()


def test_length_batches_hold_one_length_and_ignore_input_order():
    lengths = [5, 7, 5, 5, 7, 9, 5]
    hashes = ["e", "b", "a", "d", "a", "c", "b"]
    batches = embedding.length_batches(lengths, hashes, batch_size=3)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for batch in batches:
        assert len(batch) <= 3 and len({lengths[i] for i in batch}) == 1
    # shortest first, by hash inside a length: a, b, d | e | a, b | c
    assert [[hashes[i] for i in b] for b in batches] == [["a", "b", "d"], ["e"], ["a", "b"], ["c"]]
    order = [6, 3, 0, 5, 1, 4, 2]
    shuffled = embedding.length_batches([lengths[i] for i in order],
                                        [hashes[i] for i in order], batch_size=3)
    assert [[order[i] for i in b] for b in shuffled] == batches
    with pytest.raises(ValueError, match="batch_size"):
        embedding.length_batches(lengths, hashes, batch_size=0)


def test_texts_are_padded_to_a_multiple_of_pad_to_tokens_up_to_the_maximum():
    assert [embedding.padded_length(n, 256, 8) for n in (1, 8, 9, 250, 256, 300)] == \
        [8, 8, 16, 256, 256, 256]
    assert embedding.padded_length(9, 12, 8) == 12


def test_count_cut_counts_the_texts_the_model_sees_cut():
    settings = EmbeddingSettings(precision="float32", max_seq_length=32)
    texts = ["short", "word " * 30, "word " * 31, "word " * 500]  # 3, 32, 33, 502 tokens
    assert embedding.count_cut(texts, settings) == 2
    assert embedding.count_cut([], settings) == 0


def test_lengths_are_tokenised_a_chunk_at_a_time_and_equal_one_call_on_all():
    """One tokenizer call on every text held all their token lists at once: 1.6 GB above the
    model for helm_mmlu x5 (benchmarks/bench_tokenise.py), tens of GB at x100."""
    model = embedding.load_model(EmbeddingSettings(precision="float32"))
    texts = [f"Question {i}: " + "which word comes next? " * (i % 40) for i in range(23)]
    texts += ["x " * 600]  # truncated to max_seq_length
    calls: list[int] = []
    tokenizer = model.tokenizer

    class Counting:
        def __call__(self, batch, **kwargs):
            calls.append(len(batch))
            return tokenizer(batch, **kwargs)

    expected = [embedding.padded_length(len(ids), model.max_seq_length) for ids in
                tokenizer(texts, truncation=True, max_length=model.max_seq_length)["input_ids"]]
    counting = SimpleNamespace(tokenizer=Counting(), max_seq_length=model.max_seq_length)
    for tokenise_chunk in (1, 5, 24, 1000):
        calls.clear()
        assert embedding.padded_lengths(counting, texts, tokenise_chunk) == expected
        assert max(calls) <= tokenise_chunk and sum(calls) == len(texts)
    full = [len(ids) for ids in tokenizer(texts)["input_ids"]]
    assert full[-1] > model.max_seq_length + 1
    assert embedding.token_counts(counting, texts, 5) == [
        min(n, model.max_seq_length + 1) for n in full]
    seen: list[int] = []  # what a progress bar is told
    embedding.padded_lengths(counting, texts, 5, on_tokenised=seen.append)
    assert seen == [5, 5, 5, 5, 4]
    assert expected[-1] == model.max_seq_length
    with pytest.raises(ValueError, match="tokenise_chunk 0"):
        embedding.padded_lengths(model, texts, 0)


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_a_text_vector_does_not_depend_on_the_texts_embedded_with_it(tmp_path, precision):
    """What the cache held before, or where a killed job stopped, must not change a vector:
    the same texts embedded all at once, one by one, and mixed with others, bit for bit."""
    texts = [f"Which of these is a prime number: {n}, {n + 1}, {n + 2} or {n + 3}?"
             for n in range(10, 40, 3)]
    texts += ["Name the largest planet.", "What is the capital of France, and why?",
              "Plants absorb which gas from the air during photosynthesis in daylight hours?"]
    settings = EmbeddingSettings(precision=precision)
    together = embed_texts(texts, settings, tmp_path / "together", progress=False)
    one_by_one = np.vstack([embed_texts([t], settings, tmp_path / "single", progress=False)
                            for t in texts])
    others = [f"An unrelated and much longer question number {i} about the history of the "
              "Roman Empire, its provinces, its emperors and its roads?" for i in range(5)]
    mixed = embed_texts(others + texts[::-1], settings, tmp_path / "mixed", progress=False)
    np.testing.assert_array_equal(one_by_one, together)
    np.testing.assert_array_equal(mixed[len(others):][::-1], together)
    # the padded batches embed what sentence-transformers' own encode does
    model = embedding.load_model(settings)
    plain = model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    plain /= np.linalg.norm(plain, axis=1, keepdims=True)
    cosine = np.sum(plain * together, axis=1)
    assert cosine.min() > (0.99999 if precision == "float32" else 0.999)


def test_a_max_seq_length_beyond_the_model_stops_before_any_text():
    # 1024 with all-MiniLM-L6-v2 (512 positions) failed in torch on the first long text, as a
    # 40-line traceback with no word of the config key, after the texts embedded before it.
    with pytest.raises(InputError, match=r"config embedding.max_seq_length 1024: model "
                                         r"'all-MiniLM-L6-v2' takes at most 512 tokens"):
        embedding.load_model(EmbeddingSettings(max_seq_length=1024))
    assert embedding.load_model(EmbeddingSettings(max_seq_length=512)).max_seq_length == 512


def test_check_max_seq_length_lets_through_what_the_model_takes():
    embedding.check_max_seq_length(512, 512, "m")
    embedding.check_max_seq_length(4096, None, "m")  # the model does not say: its own error
    with pytest.raises(InputError, match="takes at most 510 tokens"):
        embedding.check_max_seq_length(511, 510, "m")


def test_a_cache_folder_that_cannot_be_made_is_an_input_error_naming_it(tmp_path):
    # A file where the cache folder should be gave a raw NotADirectoryError traceback.
    blocker = tmp_path / "cache"
    blocker.write_text("not a folder")
    with pytest.raises(InputError, match=rf"embedding cache {blocker}/\S+: cannot create it "
                                         r"\(Not a directory\); set embedding.cache_dir"):
        embed_texts(["a question"], EmbeddingSettings(), blocker, progress=False)


def test_the_vectors_of_a_shard_without_the_texts_are_never_read(tmp_path, monkeypatch):
    # Every job read every shard's vectors: a new task's prompts, in no benchmark shard, read
    # the whole cache (2 GB at the x100 scale) to find none.
    folder = tmp_path / "cache"
    folder.mkdir()
    for i in range(3):
        write_shard(folder, [text_hash(f"t{i}a"), text_hash(f"t{i}b")],
                    np.eye(4, dtype=np.float32)[2 * (i % 2):2 * (i % 2) + 2])
    reads: list[tuple[str, ...]] = []
    real_read = pq.ParquetFile.read

    def spying_read(self, columns=None, **kwargs):
        table = real_read(self, columns=columns, **kwargs)
        reads.append(tuple(table.column_names))
        return table

    monkeypatch.setattr(pq.ParquetFile, "read", spying_read)
    found = read_cache(folder, [text_hash("t1b"), text_hash("new")])
    np.testing.assert_array_equal(found[text_hash("t1b")], np.eye(4, dtype=np.float32)[3])
    assert len(found) == 1
    assert sorted(reads) == [("text_hash",)] * 3 + [("vector",)]


def test_a_parquet_file_reads_a_column_at_a_time_and_names_itself_when_it_fails(tmp_path):
    path = tmp_path / "t.parquet"
    write_table(pl.DataFrame({"a": [1], "b": ["x"], "c": [2.0]}).to_arrow(), path)
    with parquet_file(path, ["b", "c"]) as parquet:
        assert parquet.read(columns=["b"]).column_names == ["b"]
    assert read_table(path, ["b"]).column_names == ["a", "b", "c"]
    with pytest.raises(InputError, match=r"t\.parquet: missing column\(s\) \['d'\]"):
        with parquet_file(path, ["b", "d"]):
            pass
    damaged = bytearray(path.read_bytes())
    damaged[4:40] = b"\xff" * 36  # the first column's pages; the footer is intact
    path.write_bytes(bytes(damaged))
    with pytest.raises(InputError, match=r"t\.parquet: cannot read as Parquet"):
        with parquet_file(path, ["a"]) as parquet:
            parquet.read(columns=["a"])  # a read inside the block fails
    (tmp_path / "bad.parquet").write_bytes(b"no")
    with pytest.raises(InputError, match=r"bad\.parquet: cannot read as Parquet"):
        read_table(tmp_path / "bad.parquet", ["b"])


@pytest.mark.parametrize("shard", ["not parquet", "nan", "other width"])
def test_a_bad_cache_shard_is_named_with_what_to_do(tmp_path, shard):
    # A shard left corrupt (a disk full, a copied cache) was trusted or failed as plain
    # Parquet; a cached NaN would come back on every rebuild of the embeddings.
    settings = EmbeddingSettings()
    folder = tmp_path / settings.key()
    folder.mkdir()
    good = np.eye(4, dtype=np.float32)[:2]
    write_shard(folder, [text_hash("a"), text_hash("b")], good)
    bad = folder / "bad.parquet"
    if shard == "not parquet":
        bad.write_bytes(b"not parquet")
    else:
        vectors = np.eye(3, dtype=np.float32)[:1] if shard == "other width" else \
            np.full((1, 4), np.nan, dtype=np.float32)
        table = pl.DataFrame({"text_hash": [text_hash("c")]}).to_arrow()
        write_table(table.append_column("vector", matrix_column(vectors)), bad)
    with pytest.raises(InputError, match=r"bad\.parquet.*delete"):
        embed_texts(["a", "c"], settings, tmp_path, progress=False)
    bad.unlink()
    np.testing.assert_array_equal(read_cache(folder, [text_hash("a")])[text_hash("a")], good[0])
