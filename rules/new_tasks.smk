# A user's new task (tasks/<name>.jsonl|.csv|.txt): read, embed, score, rank.
# `snakemake results/scores/<name>.parquet` also writes the ranking results/scores/<name>.md.


rule prepare_new_task:
    input:
        new_task_file,
    output:
        f"{RESULTS}/tasks/{{new_task}}.parquet",
    log:
        f"{RESULTS}/logs/prepare_new_task/{{new_task}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/prepare_new_task/{{new_task}}.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../workflow_scripts/prepare_new_task.py"


# The same embedding job as a benchmark dataset's (same script, cache, and the setting the
# benchmark texts were embedded with).
use rule embed_dataset as embed_new_task with:
    input:
        table=f"{RESULTS}/tasks/{{new_task}}.parquet",
        index=f"{RESULTS}/embedding_index.parquet",
    output:
        f"{RESULTS}/embeddings/{{new_task}}.parquet",
    log:
        f"{RESULTS}/logs/embed_new_task/{{new_task}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/embed_new_task/{{new_task}}.tsv"
    # Not embed_dataset's `embeddings`: that group job would also wait for prepare_new_task.
    group:
        "new_task"
    # Unlike a benchmark dataset's, a new task's texts are not embedded beforehand: this job
    # loads the model (torch) itself.
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,


# A new task's scores are computed as score_task computes them (llmrouter.routing.task_scores);
# this rule adds the ranking as a second output of the same job.
rule score_new_task:
    input:
        unpack(score_new_task_inputs),
    output:
        scores=f"{RESULTS}/scores/{{new_task}}.parquet",
        ranking=report(
            f"{RESULTS}/scores/{{new_task}}.md",
            caption="../report/ranking.rst",
            category="New tasks",
            subcategory="{new_task}",
            labels={"task": "{new_task}", "file": "ranking"},
        ),
    log:
        f"{RESULTS}/logs/score_new_task/{{new_task}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/score_new_task/{{new_task}}.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        routing=routing_params(),
        top=config["new_tasks"]["top"],
        costs=cost_params()["models"],
        named_models=models_named_in_config(),
        task_file=new_task_file,
        max_points=config["distances"]["max_points"],
        embedding=EMBEDDING_SETTINGS,
    script:
        "../workflow_scripts/score_new_task.py"


ruleorder: embed_new_task > embed_dataset
ruleorder: score_new_task > score_task
