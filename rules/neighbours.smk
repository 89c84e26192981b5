rule find_neighbours:
    input:
        queries=task_embeddings,
        pool=f"{RESULTS}/pool/correctness.parquet",
        models=f"{RESULTS}/pool/models.parquet",
        embeddings=embedding_files,
    output:
        f"{RESULTS}/neighbours/{{task}}.parquet",
    params:
        datasets=DATASETS,
        k=max(routing_params()["k"], routing_params()["descriptor_k"]),
        block_size=config.get("knn", {}).get("block_size", 2048),
    log:
        f"{RESULTS}/logs/find_neighbours/{{task}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/find_neighbours/{{task}}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    conda:
        CONDA_ENV
    script:
        "../workflow_scripts/find_neighbours.py"
