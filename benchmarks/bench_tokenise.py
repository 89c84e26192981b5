"""Memory of the tokenisation that sizes the embedding batches (`embedding.padded_lengths`).

Before the first batch is embedded, every text the cache lacks is tokenised to learn its padded
length. The tokenizer returns Python lists of ints (ids, attention mask, token type ids) and
its own encodings, held until the call returns. Timed and measured here, each in its own
process on helm_mmlu's distinct texts repeated `--copies` times (each copy with its own suffix,
so all are distinct): the library's chunked call, asking for the ids alone, against the previous
implementation, one call on every text returning its attention masks and token type ids too
(baseline, in the same run), and one call asking for the ids alone (what that saves by
itself). All must give the same lengths.

    .venv/bin/python benchmarks/bench_tokenise.py [--copies 5]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time

import polars as pl

from _common import peak_rss_mib, report, require_data

from llmrouter.embedding import (  # noqa: E402  (_common puts the repo on the path)
    EmbeddingSettings,
    load_model,
    padded_length,
    padded_lengths,
)


def all_at_once(model, texts: list[str]) -> list[int]:
    """The implementation before chunking: one tokenizer call on every text."""
    ids = model.tokenizer(texts, truncation=True, max_length=model.max_seq_length)["input_ids"]
    return [padded_length(len(i), model.max_seq_length) for i in ids]


def ids_only_at_once(model, texts: list[str]) -> list[int]:
    """One call on every text as before, without the attention masks and token type ids:
    what not asking for them saves alone, chunks aside."""
    return padded_lengths(model, texts, tokenise_chunk=max(1, len(texts)))


WAYS = {"all_at_once": all_at_once, "ids_only_at_once": ids_only_at_once,
        "chunked": padded_lengths}


def worker(way: str, copies: int) -> None:
    texts = pl.read_parquet(require_data(), columns=["text"])["text"].unique().sort().to_list()
    texts = [f"{text} ({copy})" for copy in range(copies) for text in texts]
    model = load_model(EmbeddingSettings(precision="float32"), threads=2)
    before = peak_rss_mib()
    start = time.perf_counter()
    lengths = WAYS[way](model, texts)
    seconds = time.perf_counter() - start
    print(json.dumps({"texts": len(texts), "seconds": seconds, "rss_before_mib": before,
                      "peak_rss_mib": peak_rss_mib(),
                      "lengths_sha256": hashlib.sha256(str(lengths).encode()).hexdigest()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=5)
    parser.add_argument("--worker", choices=list(WAYS))
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.copies)
        return
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    runs = {}
    for way in WAYS:
        done = subprocess.run([sys.executable, __file__, "--worker", way, "--copies",
                               str(args.copies)], capture_output=True, text=True, env=env,
                              check=True)
        runs[way] = json.loads(done.stdout.strip().splitlines()[-1])
        run = runs[way]
        extra = run["peak_rss_mib"] - run["rss_before_mib"]
        print(f"{way}: {run['texts']} texts in {run['seconds']:.1f} s, "
              f"{extra:.0f} MiB above the loaded model (peak {run['peak_rss_mib']:.0f} MiB)")
    base, new = runs["all_at_once"], runs["chunked"]
    if len({run["lengths_sha256"] for run in runs.values()}) != 1:
        raise SystemExit("the lengths differ between the ways")
    extra = {way: run["peak_rss_mib"] - run["rss_before_mib"] for way, run in runs.items()}
    ratio = extra["all_at_once"] / max(extra["chunked"], 1e-9)
    print(f"chunked: {ratio:.1f}x less memory above the model, "
          f"{base['seconds'] / new['seconds']:.2f}x the baseline's speed, same lengths")
    report("bench_tokenise", {"texts": new["texts"], "extra_mib": extra,
                              "seconds": {w: r["seconds"] for w, r in runs.items()},
                              "memory_ratio": ratio})


if __name__ == "__main__":
    main()
