rule compute_task_distances:
    input:
        queries=task_embeddings,
        pool=f"{RESULTS}/pool/correctness.parquet",
        models=f"{RESULTS}/pool/models.parquet",
        embeddings=embedding_files,
        neighbours=f"{RESULTS}/neighbours/{{task}}.parquet",
    output:
        f"{RESULTS}/distances/{{task}}.parquet",
    log:
        f"{RESULTS}/logs/compute_task_distances/{{task}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/compute_task_distances/{{task}}.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=3000,
        runtime=30,
    params:
        datasets=dataset_names,
        distances=distance_params(),
        descriptor_k=config["smoother"]["descriptor_k"],
    script:
        "../workflow_scripts/compute_task_distances.py"


rule collect_distances:
    input:
        distance_rows,
    output:
        f"{RESULTS}/distances.parquet",
    log:
        f"{RESULTS}/logs/collect_distances.log",
    benchmark:
        f"{RESULTS}/benchmarks/collect_distances.tsv"
    group:
        "scores"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../workflow_scripts/collect_distances.py"
