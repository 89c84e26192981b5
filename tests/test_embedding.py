"""Embedding: the content-addressed cache and the choice of precision."""

from pathlib import Path

import numpy as np
import pytest

from llmrouter import embedding
from llmrouter.artifacts import InputError
from llmrouter.embedding import EmbeddingSettings, embed_texts


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


def test_cache_key_names_every_setting_that_changes_vectors():
    base = EmbeddingSettings()
    assert base.key() != EmbeddingSettings(precision="bfloat16").key()
    assert base.key() != EmbeddingSettings(max_seq_length=128).key()
    assert base.key() != EmbeddingSettings(model="other/model").key()
    assert base.key() == EmbeddingSettings(batch_size=64).key()  # batch size: same vectors
    assert EmbeddingSettings(precision="auto").precision in ("float32", "bfloat16")


@pytest.mark.slow
def test_cache_embeds_each_text_once(tmp_path, monkeypatch):
    loads = []
    real_load = embedding.load_model

    def counting_load(*args, **kwargs):
        loads.append(1)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(embedding, "load_model", counting_load)
    settings = EmbeddingSettings()
    texts = ["What is 2 + 2?", "Name the largest planet.", "What is 2 + 2?"]
    first = embed_texts(texts, settings, tmp_path, progress=False)
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
