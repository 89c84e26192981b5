# One job embeds every text the cache lacks (the model and torch load once, not once per
# dataset); the per-dataset jobs after it only read the cache.
rule embed_all_texts:
    input:
        benchmark_tables,
    output:
        f"{RESULTS}/embedding_index.parquet",
    log:
        f"{RESULTS}/logs/embed_all_texts.log",
    benchmark:
        f"{RESULTS}/benchmarks/embed_all_texts.tsv"
    group:
        "embeddings"
    conda:
        CONDA_ENV
    threads: 8
    resources:
        mem_mb=4000,
        runtime=120,
    params:
        embedding=EMBEDDING_SETTINGS,
    script:
        "../workflow_scripts/embed_all_texts.py"


rule embed_dataset:
    input:
        table=f"{RESULTS}/benchmark/{{dataset}}.parquet",
        index=f"{RESULTS}/embedding_index.parquet",
    output:
        f"{RESULTS}/embeddings/{{dataset}}.parquet",
    log:
        f"{RESULTS}/logs/embed_dataset/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/embed_dataset/{{dataset}}.tsv"
    group:
        "embeddings"
    conda:
        CONDA_ENV
    threads: 1
    # Seconds of work: embed_all_texts has filled the cache. On SLURM the group's request is
    # the sum of its layers' runtimes (57 datasets, 8 at a time: 8 layers), so 60 minutes
    # here asked for 10 hours.
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        embedding=EMBEDDING_SETTINGS,
    script:
        "../workflow_scripts/embed_dataset.py"
