"""A user's new task: the ranking (llmrouter/ranking.py) and the workflow target
results/scores/<name>.parquet (+ .md) on the 6x8 helm_mmlu slice."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import polars as pl
import pytest
import yaml

from conftest import REPO, SNAKEMAKE, require_shared, run_workflow
from llmrouter import ranking
from llmrouter.knn import Neighbours
from new_task_run import (PROMPTS, STRAY_FILE, TASK, TYPO_COLUMN, first_output, first_scores,
                          new_task_run)


def scores_frame() -> pl.DataFrame:
    return pl.DataFrame({
        "task": ["t"] * 3, "model": ["a", "b", "c"],
        "s1": [0.5, 0.7, 0.7], "s2": [0.4, 0.8, 0.8], "p": [0.9, 0.6, 0.7],
        "s3": [0.42, 0.56, 0.62],
        "pick_s1": [False, False, True], "pick_s2": [False, False, True],
        "pick_s3": [False, False, True], "pick_bma": [True, False, False],
    })


def test_ranking_table_orders_by_s3_and_names_picks():
    table = ranking.ranking_table(scores_frame(), {"a": 1.0, "c": 3.0}, {"b": 0.25})
    assert table["model"].to_list() == ["c", "b", "a"]
    assert table["rank"].to_list() == [1, 2, 3]
    assert table["picks"].to_list() == ["S1, S2, S3", "", "BMA"]
    assert table["cost"].to_list() == [3.0, None, 1.0]
    assert table["accuracy"].to_list() == [None, 0.25, None]
    assert ranking.pick_of(table, "S3") == "c" and ranking.pick_of(table, "BMA") == "a"


def test_ranking_table_takes_integer_and_decimal_costs_together():
    # YAML gives `34` and `8.5` side by side (config/helm_mmlu_cost.yaml does).
    table = ranking.ranking_table(scores_frame(), {"a": 34, "b": 8.5})
    assert table["cost"].to_list() == [None, 8.5, 34.0]


def two_queries() -> Neighbours:
    # Two queries, lists of 4: dataset codes and distances ascending; -1 marks no neighbour.
    return Neighbours(index=np.array([[0, 1, 2, 3], [4, 5, -1, -1]]),
                      dataset=np.array([[0, 1, 0, 1], [1, 1, 0, 0]], dtype=np.int32),
                      distance=np.array([[0.1, 0.2, 0.3, 0.4], [0.3, 0.5, 9, 9]],
                                        dtype=np.float32))


def test_task_u_and_neighbour_shares():
    neighbours = two_queries()
    assert ranking.task_u(neighbours, 2) == pytest.approx((0.1 + 0.2 + 0.3 + 0.5) / 4)
    shares = ranking.neighbour_shares(neighbours, ["algebra", "biology"], 2)
    assert shares["dataset"].to_list() == ["biology", "algebra"]
    assert shares["share"].to_list() == pytest.approx([0.75, 0.25])
    assert shares["mean_distance"].to_list() == pytest.approx([(0.2 + 0.3 + 0.5) / 3, 0.1])


def test_coverage_flags_a_far_task():
    matrix = pl.DataFrame({"task": ["a", "a", "b", "b"], "dataset": ["a", "b", "a", "b"],
                           "distance": [0.0, 0.5, 0.5, 0.0]})
    near = pl.DataFrame({"task": ["t", "t"], "dataset": ["a", "b"], "distance": [0.3, 0.6]})
    far = near.with_columns(pl.col("distance") + 0.4)
    cover = ranking.coverage(0.6, np.array([0.5, 0.7]), pl.concat([matrix, near]), "t")
    assert not cover.far and cover.nearest_distance == 0.3 and cover.benchmark_nearest_max == 0.5
    cover = ranking.coverage(0.6, np.array([0.5, 0.7]), pl.concat([matrix, far]), "t")
    assert cover.far_by_distance and not cover.far_by_u and cover.far
    cover = ranking.coverage(0.8, np.array([0.5, 0.7]))
    assert cover.far_by_u and cover.nearest_distance is None
    assert ranking.nearest_by_distance(near, "t")["dataset"].to_list() == ["a", "b"]


def test_a_task_of_few_prompts_is_not_judged_by_ot_distance():
    # One prompt copied from a benchmark task was "far from everything": the OT distance of
    # one point is its mean distance to the other cloud, while the limit comes from clouds of
    # hundreds of points. Below the smallest benchmark cloud only u(t) judges.
    matrix = pl.DataFrame({"task": ["a", "a", "b", "b"], "dataset": ["a", "b", "a", "b"],
                           "distance": [0.0, 0.5, 0.5, 0.0]})
    one = pl.DataFrame({"task": ["t", "t"], "dataset": ["a", "b"], "distance": [0.75, 0.9]})
    distances = pl.concat([matrix, one])
    assert ranking.ot_min_points([120, 900, 300], 500) == 120
    assert ranking.coverage(0.4, np.array([0.5, 0.7]), distances, "t").far_by_distance
    cover = ranking.coverage(0.4, np.array([0.5, 0.7]), distances, "t", 1, 120)
    assert cover.too_few_for_ot and not cover.far and cover.nearest_distance is None
    shares = pl.DataFrame({"dataset": ["a"], "share": [1.0], "mean_distance": [0.4]})
    nearest = ranking.nearest_by_distance(one, "t")
    page = ranking.ranking_markdown("t", ranking.ranking_table(scores_frame()), 1, cover,
                                    shares, nearest)
    assert "Warning" not in page and "| a | 0.7500 |" not in page
    assert "1 prompt scored against 3 benchmark models." in page
    assert ("No optimal-transport check: 1 prompt is fewer than the 120 points of the "
            "smallest benchmark task") in page
    assert "comes from these distances" not in page
    # With descriptor ot, p itself rests on those distances: the page says so.
    ot_page = ranking.ranking_markdown("t", ranking.ranking_table(scores_frame()), 1, cover,
                                       shares, nearest, p_from_ot=True)
    assert "**The estimated p below comes from these distances** (`smoother.descriptor: ot`)" \
        in ot_page
    enough = ranking.coverage(0.4, np.array([0.5, 0.7]), distances, "t", 120, 120)
    assert enough.far_by_distance and not enough.too_few_for_ot


def test_costs_per_token_are_told_apart_on_the_page():
    # 4 decimals printed 2e-06 and 1.6e-05 both as 0.0000.
    table = ranking.ranking_table(scores_frame(), {"a": 2e-06, "b": 1.6e-05, "c": 34})
    cover = ranking.Coverage(u=0.6, u_min=0.5, u_median=0.6, u_max=0.7, far_by_u=False)
    shares = pl.DataFrame({"dataset": ["a"], "share": [1.0], "mean_distance": [0.4]})
    rows = [line for line in ranking.ranking_markdown("t", table, 30, cover, shares).splitlines()
            if re.match(r"\| \d+ \| `", line)]
    assert [row.split("|")[7].strip() for row in rows] == ["34.0000", "1.6e-05", "2e-06"]


def test_ranking_markdown_warns_when_far():
    table = ranking.ranking_table(scores_frame())
    shares = pl.DataFrame({"dataset": ["algebra"], "share": [1.0], "mean_distance": [0.7]})
    far = ranking.Coverage(u=0.8, u_min=0.5, u_median=0.6, u_max=0.7, far_by_u=True)
    page = ranking.ranking_markdown("t", table, 30, far, shares, top=2)
    assert "**Pick: `c`**" in page and "BMA: `a`" in page
    assert "Warning: this task is far from everything the benchmark covers" in page
    assert "| 1 | `c` | 0.700 | 0.800 | 0.700 | 0.620 | S1, S2, S3 |" in page
    assert "(1 more models in the Parquet file.)" in page
    assert "cost" not in page.split("## Ranking")[1].splitlines()[2]
    near = ranking.Coverage(u=0.6, u_min=0.5, u_median=0.6, u_max=0.7, far_by_u=False)
    assert "Warning" not in ranking.ranking_markdown("t", table, 30, near, shares)


def test_rank_new_task_takes_benchmark_u_once_per_dataset_and_flags_unknown_columns():
    # Only the leave-one-task-out pass (heldout null) is the benchmark: the heldout rows
    # would move u_min and u_max. biology and chemistry lack two models' pairs, so counting
    # algebra's u once per model would move the median to 0.5.
    pairs = pl.DataFrame({
        "heldout": ["algebra"] * 2 + [None] * 5,
        "dataset": ["biology", "chemistry"] + ["algebra"] * 3 + ["biology", "chemistry"],
        "model": ["a", "a", "a", "b", "c", "a", "a"],
        "u": [0.05, 2.0, 0.5, 0.5, 0.5, 0.7, 0.9],
    })
    benchmark = pl.DataFrame({"task": ["algebra", "algebra", "biology", "biology"],
                              "dataset": ["algebra", "biology", "algebra", "biology"],
                              "distance": [0.0, 0.5, 0.5, 0.0]})
    # Columns in another order, and one more (task_u), than the benchmark matrix.
    row = pl.DataFrame({"task_u": [0.3, 0.3], "distance": [0.6, 0.3],
                        "dataset": ["biology", "algebra"], "task": ["t", "t"]})
    prompts = pl.DataFrame({"instance_id": ["1", "2", "3", "4"], "text": ["q"] * 4,
                            "zeta": [1, 0, 1, 1], "b": [1, 0, 0, 1], "alpha": [0, 0, 0, 1],
                            "c": pl.Series([None] * 4, dtype=pl.Int64)})
    ranked = ranking.rank_new_task("t", scores_frame(), two_queries(), pairs,
                                   ["algebra", "biology"], prompts, row, benchmark,
                                   descriptor_k=2, costs={"a": 1.0}, top=2)
    assert ranked.unknown == ["alpha", "zeta"]  # c has no labelled prompt: no accuracy
    assert ranked.table.equals(ranking.ranking_table(scores_frame(), {"a": 1.0}, {"b": 0.5}))
    cover = ranked.coverage
    assert cover.u == pytest.approx((0.1 + 0.2 + 0.3 + 0.5) / 4)
    assert (cover.u_min, cover.u_median, cover.u_max) == pytest.approx((0.5, 0.7, 0.9))
    assert (cover.nearest_distance, cover.benchmark_nearest_max) == (0.3, 0.5)
    assert not cover.far
    page = ranked.markdown
    assert "4 prompts scored against 3 benchmark models." in page
    assert "| algebra | 0.3000 |\n| biology | 0.6000 |" in page
    assert "| biology | 75.0% | 0.3333 |" in page
    assert "| 2 | `b` | 0.700 | 0.800 | 0.600 | 0.560 |  | 0.500 |  |" in page
    assert "(1 more models in the Parquet file.)" in page
    assert "**Ignored correctness column(s) of the task file: `alpha`, `zeta`.**" in page


def test_ranking_markdown_names_ignored_correctness_columns():
    # A misspelt model id (audit N4) used to leave only a line in the job's log.
    table = ranking.ranking_table(scores_frame())
    shares = pl.DataFrame({"dataset": ["algebra"], "share": [1.0], "mean_distance": [0.7]})
    near = ranking.Coverage(u=0.6, u_min=0.5, u_median=0.6, u_max=0.7, far_by_u=False)
    page = ranking.ranking_markdown("t", table, 30, near, shares, unknown=["01-ai/yi-34"])
    head = page.split("## How close")[0]
    assert "> **Ignored correctness column(s) of the task file: `01-ai/yi-34`.**" in head
    assert "no true accuracy" in head
    for unknown in (None, []):
        assert "Ignored" not in ranking.ranking_markdown("t", table, 30, near, shares,
                                                         unknown=unknown)


def test_unknown_embedding_model_is_an_input_error():
    # In a subprocess: offline mode must be set before huggingface_hub is imported, else the
    # hub is asked (and retried) for the unknown name.
    code = ("from llmrouter.artifacts import InputError\n"
            "from llmrouter.embedding import EmbeddingSettings, load_model\n"
            "try:\n"
            "    load_model(EmbeddingSettings(model='no-such/embedding-model'))\n"
            "except InputError as error:\n"
            "    print('InputError:', error)\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=300)
    assert "InputError: embedding.model 'no-such/embedding-model': cannot load it" in done.stdout, \
        done.stdout + done.stderr


@pytest.mark.slow
def test_new_task_target_writes_scores_and_ranking(tmp_path_factory):
    require_shared()
    directory, config, frame = new_task_run(tmp_path_factory)
    results = directory / "results"
    models = sorted(frame["model"].unique().to_list())
    # Only the new task was scored; the benchmark datasets were embedded as the pool.
    assert first_scores() == [f"{TASK}.md", f"{TASK}.parquet"]
    prompts = pl.read_parquet(results / "tasks" / f"{TASK}.parquet")
    assert prompts.columns == ["instance_id", "text", "label", models[0], TYPO_COLUMN]
    assert prompts["text"].to_list() == PROMPTS

    scores = pl.read_parquet(results / "scores" / f"{TASK}.parquet")
    assert sorted(scores["model"].to_list()) == models
    for column in ("s1", "s2", "p", "s3"):
        assert scores[column].is_between(0, 1).all(), column
    assert scores["accuracy"].is_null().all()  # unlabelled: no true accuracy
    assert (scores["n"] == len(PROMPTS)).all()
    assert scores["pick_s3"].sum() == 1 and scores["pick_bma"].sum() == 1
    pick = scores.filter("pick_s3")["model"].item()

    page = (results / "scores" / f"{TASK}.md").read_text()
    assert page.startswith(f"# Which model for `{TASK}`?")
    assert f"**Pick: `{pick}`**" in page
    assert f"{len(PROMPTS)} prompts scored against {len(models)} benchmark models" in page
    assert "## How close is this task to the benchmark?" in page
    # 10 prompts, fewer than the slice's smallest subject: judged by u(t) alone.
    assert "No optimal-transport check: 10 prompts are fewer than the " in page
    assert "Optimal-transport distance to the nearest benchmark task" not in page
    header = next(line for line in page.splitlines() if line.startswith("| rank |"))
    assert header == ("| rank | model | S1 | S2 | estimated p | S3 | cost | true accuracy "
                      "| pick |")
    rows = [line for line in page.splitlines() if re.match(r"\| \d+ \| `", line)]
    assert len(rows) == len(models)
    by_model = {r.split("|")[2].strip(" `"): [c.strip() for c in r.split("|")[1:-1]]
                for r in rows}
    s3_order = scores.sort(["s3", "s1", "model"], descending=[True, True, False])
    assert list(by_model) == s3_order["model"].to_list()
    assert by_model[models[0]][7] == "0.500"  # the given correctness 0,1,0,1,...
    assert by_model[models[1]][6] == "2.0000"  # cost from config
    for model, cells in by_model.items():
        row = scores.filter(pl.col("model") == model).row(0, named=True)
        assert float(cells[5]) == pytest.approx(row["s3"], abs=5e-4)
        assert ("S3" in cells[-1].split(", ")) == row["pick_s3"]
    log = (results / "logs" / "score_new_task" / f"{TASK}.log").read_text()
    assert f"S3 pick {pick}" in log
    # What was set aside is said where the user looks, not only in a job log.
    assert f"Ignored correctness column(s) of the task file: `{TYPO_COLUMN}`" in page
    output = first_output()
    assert (f"WARNING: tasks/{TASK}.jsonl: correctness column(s) ['{TYPO_COLUMN}'] name no "
            "model scored here") in output
    assert f"[new_tasks] tasks/{STRAY_FILE}: not a task file" in output


@pytest.mark.slow
def test_on_slurm_a_new_tasks_embedding_is_its_own_group_job(tmp_path_factory):
    # Copied from embed_dataset, it was in group `embeddings` with embed_all_texts: that one
    # sbatch job then also waited for prepare_new_task.
    require_shared()
    directory, config, _ = new_task_run(tmp_path_factory)
    # A dry run prints each group job with its rules (run_workflow's --quiet=rules would not).
    done = subprocess.run(
        [SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(directory),
         "--configfile", str(config), "--profile", str(REPO / "profiles" / "slurm"),
         "--workflow-profile", "none", "-n", "--forcerun", "embed_all_texts", "embed_new_task",
         "--", str(directory / "results" / "scores" / f"{TASK}.parquet")],
        capture_output=True, text=True, cwd=directory, timeout=600, check=True)
    groups = re.split(r"Group job ", done.stdout + done.stderr)[1:]
    # a group job's own jobs are the indented ones
    members = {g.split()[0]: set(re.findall(r"^    rule (\w+):", g, re.M)) for g in groups}
    assert members["new_task"] == {"embed_new_task"}, members
    assert "embed_new_task" not in members["embeddings"]


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["unknown model", "model without a cost"])
def test_a_wrong_price_list_stops_the_scoring(tmp_path_factory, fault):
    # The summary and the frontier need a cost for every model; the page, too, would show
    # blanks for the models the price list forgot.
    require_shared()
    directory, config, _ = new_task_run(tmp_path_factory)
    settings = yaml.safe_load(config.read_text())
    costs = settings["cost"]["models"]
    if fault == "unknown model":
        costs["acme/ghost"] = 1.0
        message = "ERROR: config cost.models: unknown model(s) ['acme/ghost']"
    else:
        forgotten = sorted(costs)[0]
        del costs[forgotten]
        message = f"ERROR: config cost.models: no cost for 1 model(s), e.g. ['{forgotten}']"
    # In place of the run's config.yaml: a --configfile beside it would be merged into it,
    # and a cost removed there would stay.
    original = config.read_text()
    config.write_text(yaml.safe_dump(settings))
    target = str(directory / "results" / "scores" / f"{TASK}.parquet")
    try:
        done = run_workflow(config, target, check=False)
        assert done.returncode != 0
        assert message in done.stdout + done.stderr
    finally:
        config.write_text(original)
        run_workflow(config, target)  # the outputs the failed job removed, for later tests


@pytest.mark.slow
def test_bad_task_files_fail_clearly(tmp_path_factory):
    require_shared()
    directory, config, _ = new_task_run(tmp_path_factory)
    bad = directory / "tasks" / "empty_task.jsonl"
    bad.write_text('{"text": ""}\n')
    clash = directory / "tasks" / "anatomy.txt"
    try:
        done = run_workflow(config, str(directory / "results/scores/empty_task.parquet"),
                            check=False)
        assert done.returncode != 0
        assert "ERROR: tasks/empty_task.jsonl: no texts" in done.stderr + done.stdout
        assert not (directory / "results/tasks/empty_task.parquet").exists()
        clash.write_text("What is the femur?\n")
        done = run_workflow(config, "-n", check=False)
        assert done.returncode != 0
        assert "['anatomy'] equal benchmark dataset name(s)" in done.stderr + done.stdout
    finally:
        bad.unlink()
        clash.unlink(missing_ok=True)


def test_the_page_states_the_fallback_as_configured():
    assert "at least 60% of 1000 simulated draws" in ranking.fallback_sentence(0.6, 1000)
    assert "at least 62.5% of 200 simulated draws" in ranking.fallback_sentence(0.625, 200)
    assert "no fallback" in ranking.fallback_sentence(0.0, 1000)



def test_ranking_markdown_says_how_many_prompts_the_embedding_cut():
    # sentence-transformers cuts a long prompt at max_seq_length without a word: the page must
    # say its scores rest on the first tokens alone.
    table = ranking.ranking_table(scores_frame())
    shares = pl.DataFrame({"dataset": ["algebra"], "share": [1.0], "mean_distance": [0.7]})
    near = ranking.Coverage(u=0.6, u_min=0.5, u_median=0.6, u_max=0.7, far_by_u=False)
    page = ranking.ranking_markdown("t", table, 30, near, shares, cut=3, max_seq_length=256)
    head = page.split("## How close")[0]
    assert "> **3 of the 30 prompts are longer than 256 tokens** (embedding.max_seq_length): " \
           "only their first 256 tokens were embedded" in head
    assert "longer than" not in ranking.ranking_markdown("t", table, 30, near, shares)
