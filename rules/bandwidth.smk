rule fit_bandwidth:
    input:
        pool=f"{RESULTS}/pool/correctness.parquet",
        models=f"{RESULTS}/pool/models.parquet",
        pairs=f"{RESULTS}/smoother/pairs.parquet",
        distance_matrix=bandwidth_distances,
    output:
        f"{RESULTS}/smoother/bandwidth.parquet",
    log:
        f"{RESULTS}/logs/fit_bandwidth.log",
    benchmark:
        f"{RESULTS}/benchmarks/fit_bandwidth.tsv"
    group:
        "scores"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    # What the choice depends on beyond the pairs: draws, seeds and the fallback do not rerun it.
    params:
        mode=routing_params()["mode"],
        descriptor=routing_params()["descriptor"],
        bandwidth=routing_params()["bandwidth"],
        grid=searched_bandwidth_grid(),
    script:
        "../workflow_scripts/fit_bandwidth.py"
