# knn.index: approximate (large pools): one cell index over the pool, shared by every task.
rule build_ann_index:
    input:
        pool=f"{RESULTS}/pool/correctness.parquet",
        models=f"{RESULTS}/pool/models.parquet",
        embeddings=embedding_files,
    output:
        f"{RESULTS}/knn/ann_index.parquet",
    log:
        f"{RESULTS}/logs/build_ann_index.log",
    benchmark:
        f"{RESULTS}/benchmarks/build_ann_index.tsv"
    conda:
        CONDA_ENV
    threads: 8
    resources:
        mem_mb=16000,
        runtime=60,
    params:
        datasets=dataset_names,
        cell_size=config["knn"]["cell_size"],
    script:
        "../workflow_scripts/build_ann_index.py"


rule find_neighbours:
    input:
        unpack(ann_index_input),
        queries=task_embeddings,
        pool=f"{RESULTS}/pool/correctness.parquet",
        models=f"{RESULTS}/pool/models.parquet",
        embeddings=embedding_files,
    output:
        f"{RESULTS}/neighbours/{{task}}.parquet",
    log:
        f"{RESULTS}/logs/find_neighbours/{{task}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/find_neighbours/{{task}}.tsv"
    conda:
        CONDA_ENV
    threads: 2
    resources:
        mem_mb=4000,
        runtime=20,
    params:
        datasets=dataset_names,
        n_neighbours=max(predictor_params()["k"], predictor_params()["descriptor_k"]),
        index=config["knn"]["index"],
        n_probe=approximate_search_probes(),
    script:
        "../workflow_scripts/find_neighbours.py"
