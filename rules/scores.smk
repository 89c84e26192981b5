rule score_task:
    input:
        neighbours=f"{RESULTS}/neighbours/{{task}}.parquet",
        pool=f"{RESULTS}/pool/correctness.parquet",
        models=f"{RESULTS}/pool/models.parquet",
        pairs=f"{RESULTS}/smoother/pairs.parquet",
        bandwidth=f"{RESULTS}/smoother/bandwidth.parquet",
        task_distances=task_distance_row,
    output:
        f"{RESULTS}/scores/{{task}}.parquet",
    log:
        f"{RESULTS}/logs/score_task/{{task}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/score_task/{{task}}.tsv"
    group:
        "scores"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        routing=routing_params(),
    script:
        "../workflow_scripts/score_task.py"
