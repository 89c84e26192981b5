rule fit_smoother:
    input:
        pool=f"{RESULTS}/pool/correctness.parquet",
        models=f"{RESULTS}/pool/models.parquet",
        neighbours=neighbour_files,
    output:
        f"{RESULTS}/smoother/pairs.parquet",
    log:
        f"{RESULTS}/logs/fit_smoother.log",
    benchmark:
        f"{RESULTS}/benchmarks/fit_smoother.tsv"
    group:
        "scores"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        pairs=pairs_params(),
    script:
        "../workflow_scripts/fit_smoother.py"
