rule fit_smoother:
    input:
        pool=f"{RESULTS}/pool/correctness.parquet",
        models=f"{RESULTS}/pool/models.parquet",
        neighbours=neighbour_files,
    output:
        f"{RESULTS}/smoother/pairs.parquet",
    params:
        routing=routing_params(),
    log:
        f"{RESULTS}/logs/fit_smoother.log",
    benchmark:
        f"{RESULTS}/benchmarks/fit_smoother.tsv"
    group:
        "scores"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        CONDA_ENV
    script:
        "../workflow_scripts/fit_smoother.py"
