rule summarize_evaluation:
    input:
        scores=score_files,
        # every model of the source, kept or dropped: what cost.models keys may name
        models=f"{RESULTS}/pool/models.parquet",
    output:
        picks=f"{RESULTS}/report/picks.parquet",
        summary=f"{RESULTS}/report/summary.parquet",
        markdown=f"{RESULTS}/report/summary.md",
    log:
        f"{RESULTS}/logs/summarize_evaluation.log",
    benchmark:
        f"{RESULTS}/benchmarks/summarize_evaluation.tsv"
    group:
        "scores"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        mode=routing_params()["mode"],
        costs=cost_params()["models"],
        named_models=models_named_in_config(),
    script:
        "../workflow_scripts/summarize_evaluation.py"
