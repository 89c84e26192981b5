rule prepare_table_dataset:
    input:
        table_input,
    output:
        f"{RESULTS}/benchmark/{{dataset}}.parquet",
    log:
        f"{RESULTS}/logs/prepare_table_dataset/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/prepare_table_dataset/{{dataset}}.tsv"
    group:
        "pool"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        threshold=table_threshold(),
    script:
        "../workflow_scripts/prepare_table_dataset.py"


rule collect_pool:
    input:
        benchmark_tables,
    output:
        correctness=f"{RESULTS}/pool/correctness.parquet",
        models=f"{RESULTS}/pool/models.parquet",
    log:
        f"{RESULTS}/logs/collect_pool.log",
    benchmark:
        f"{RESULTS}/benchmarks/collect_pool.tsv"
    group:
        "pool"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    params:
        include=config["models"]["include"],
        exclude=config["models"]["exclude"],
    script:
        "../workflow_scripts/collect_pool.py"
