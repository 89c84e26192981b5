"""Random generators keyed by a run seed and a task's name.

Keyed by name rather than by position, so a task's draws do not move when tasks are added,
removed or scored in another order, in another process, or on another node.
"""

from __future__ import annotations

import zlib

import numpy as np


def task_rng(seed: int, task: str, stream: int | None = None) -> np.random.Generator:
    """A generator seeded by (seed, crc32 of the task's name[, stream]).

    stream: a separate, independent sequence for the same task (None: the task's main one),
    for draws that must not depend on how many numbers another use consumed.
    """
    key = [seed, zlib.crc32(task.encode())]
    return np.random.default_rng(key if stream is None else [*key, stream])
