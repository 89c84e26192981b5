"""One workflow run on the 6x8 helm_mmlu slice with a small new task, shared by
tests/test_new_tasks.py and tests/test_report.py (the run takes minutes: do it once)."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from conftest import mmlu_slice, run_workflow, write_config

TASK = "tiny_algebra"
PROMPTS = [
    "Solve for x: 3x + 7 = 22.",
    "Find all real solutions of x^2 - 5x + 6 = 0.",
    "Factor completely: x^2 - 49.",
    "Solve the system: x + y = 10 and x - y = 4.",
    "What is the slope of the line through (2, 3) and (6, 11)?",
    "Expand and simplify (2x + 3)(x - 4).",
    "Solve the inequality 4 - 3x > 13.",
    "If f(x) = 2x^2 - 3x + 1, what is f(3)?",
    "Find the vertex of the parabola y = x^2 - 6x + 5.",
    "Solve |2x - 5| = 9.",
]
TYPO_COLUMN = "acme/no-such-model"
STRAY_FILE = "notes.parquet"
_RUN: dict = {}


def new_task_run(tmp_path_factory) -> tuple[Path, Path, pl.DataFrame]:
    """(run folder, config, slice table): the slice, tasks/tiny_algebra.jsonl (with a label,
    one model's correctness and a correctness column naming no model), a stray Parquet file in
    tasks/ and per-model costs; the target
    results/scores/tiny_algebra.parquet built. Later tests may build more in the folder: what
    the target alone wrote is in `first_scores()`."""
    if "dir" not in _RUN:
        frame = mmlu_slice()
        directory = tmp_path_factory.mktemp("new_task_run")
        frame.write_parquet(directory / "slice.parquet")
        models = sorted(frame["model"].unique().to_list())
        (directory / "tasks").mkdir()
        # TYPO_COLUMN names no model: ignored, but said on the page and the terminal.
        rows = [{"text": t, "label": "see book", models[0]: i % 2, TYPO_COLUMN: 1}
                for i, t in enumerate(PROMPTS)]
        (directory / "tasks" / f"{TASK}.jsonl").write_text(
            "".join(json.dumps(r) + "\n" for r in rows))
        frame.head(3).write_parquet(directory / "tasks" / STRAY_FILE)  # not a task format
        costs = {m: float(i + 1) for i, m in enumerate(models)}
        config = write_config(directory, directory / "slice.parquet", cost={"models": costs})
        done = run_workflow(config, str(directory / "results" / "scores" / f"{TASK}.parquet"))
        scores = sorted(p.name for p in (directory / "results" / "scores").iterdir())
        _RUN.update(dir=directory, config=config, frame=frame, scores=scores,
                    output=done.stdout + done.stderr)
    return _RUN["dir"], _RUN["config"], _RUN["frame"]


def first_output() -> str:
    """What new_task_run's target build printed (stdout and stderr)."""
    return _RUN["output"]


def first_scores() -> list[str]:
    """The files of results/scores/ right after new_task_run's target build, whatever other
    tests (test_report.py runs the whole workflow there) built since."""
    return _RUN["scores"]
