"""A workflow job's thread pools, sized to its rule's `threads:`.

Snakemake sets OMP_NUM_THREADS and the BLAS/MKL/NUMEXPR variables to a job's threads; polars
and the Hugging Face tokenizers (Rust, rayon) read their own variables instead and otherwise
start one thread per CPU in every job, so eight single-thread jobs on an 8-core node ran 64
polars threads. Both read their variable once, polars on import: hence a function that each
script calls before anything imports polars (this module imports nothing that does).
"""

from __future__ import annotations

import os
import sys

POOL_VARIABLES = ("POLARS_MAX_THREADS", "RAYON_NUM_THREADS")


def bind_threads(threads: int) -> None:
    """Size polars' and the tokenizers' thread pools to `threads` (at least 1).

    Raises RuntimeError when polars is already imported: its pool would keep its size, and the
    job would silently use every CPU.
    """
    if "polars" in sys.modules:
        raise RuntimeError("bind_threads must run before polars is imported: polars sizes its "
                           "thread pool on import")
    for name in POOL_VARIABLES:
        os.environ[name] = str(max(1, int(threads)))
