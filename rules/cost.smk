rule summarize_cost:
    input:
        scores=score_files,
        # every model of the source, kept or dropped: what cost.models keys may name
        models=f"{RESULTS}/pool/models.parquet",
    output:
        table=f"{RESULTS}/report/frontier.parquet",
        figure=report(
            f"{RESULTS}/report/frontier.png",
            caption="../report/frontier.rst",
            category="Cost",
        ),
    log:
        f"{RESULTS}/logs/summarize_cost.log",
    benchmark:
        f"{RESULTS}/benchmarks/summarize_cost.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        cost=cost_params(),
        named_models=models_named_in_config(),
    script:
        "../workflow_scripts/summarize_cost.py"
