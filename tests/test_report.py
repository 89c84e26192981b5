"""`snakemake --report` on the 6x8 helm_mmlu slice holds every figure, the summary table and
the new task's ranking (checked inside the report's .zip form)."""

from __future__ import annotations

import zipfile

import polars as pl
import pytest
from matplotlib.image import imread

from conftest import require_shared, run_workflow
from new_task_run import TASK, new_task_run

FIGURES = ["picks_vs_oracle.png", "smoother_curves.png", "task_distances.png",
           f"ranking_{TASK}.png"]


@pytest.mark.slow
def test_report_holds_every_figure(tmp_path_factory):
    require_shared()
    directory, config, _ = new_task_run(tmp_path_factory)
    run_workflow(config)
    figures = directory / "results" / "report" / "figures"
    for name in FIGURES:
        image = imread(figures / name)
        assert image.shape[0] > 200 and image.shape[1] > 200 and image.std() > 0, name
    # The configured costs reach the evaluation table, not only the frontier.
    summary = pl.read_parquet(directory / "results" / "report" / "summary.parquet")
    assert summary["mean_cost"].null_count() == 0 and summary["mean_cost"].min() > 0
    archive = directory / "report.zip"
    run_workflow(config, extra=("--report", str(archive)))
    with zipfile.ZipFile(archive) as report:
        names = report.namelist()
        basenames = {name.rsplit("/", 1)[-1] for name in names}
        for expected in [*FIGURES, "summary.html", f"{TASK}.md", "frontier.png"]:
            assert expected in basenames, f"{expected} missing from the report: {sorted(basenames)}"
        page = next(n for n in names if n.endswith("report.html"))
        html = report.read(page).decode()
    # Captions and categories made it into the report.
    for text in ("Evaluation", "Smoother", "Task distances", "New tasks", "Cost",
                 "confidence smoother", "optimal transport",
                 "60 percent of 1000 simulated draws"):  # the configured fallback
        assert text in html, text
