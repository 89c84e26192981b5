rule embed_dataset:
    input:
        f"{RESULTS}/benchmark/{{dataset}}.parquet",
    output:
        f"{RESULTS}/embeddings/{{dataset}}.parquet",
    params:
        embedding=config.get("embedding", {}),
        cache_dir=config.get("embedding", {}).get(
            "cache_dir", f"{RESOURCES}/embedding_cache"
        ),
    log:
        f"{RESULTS}/logs/embed_dataset/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/embed_dataset/{{dataset}}.tsv"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        CONDA_ENV
    script:
        "../workflow_scripts/embed_dataset.py"
