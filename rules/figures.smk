# The report's figures and summary page: `snakemake --report results/report.html` collects them.


rule render_summary_table:
    input:
        summary=f"{RESULTS}/report/summary.parquet",
        picks=f"{RESULTS}/report/picks.parquet",
    output:
        report(
            f"{RESULTS}/report/summary.html",
            caption="../report/summary.rst",
            category="Evaluation",
            labels={"figure": "summary table"},
        ),
    log:
        f"{RESULTS}/logs/render_summary_table.log",
    benchmark:
        f"{RESULTS}/benchmarks/render_summary_table.tsv"
    group:
        "figures"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        mode=routing_params()["mode"],
    script:
        "../workflow_scripts/render_summary_table.py"


rule plot_picks:
    input:
        f"{RESULTS}/report/picks.parquet",
    output:
        report(
            f"{FIGURES}/picks_vs_oracle.png",
            caption="../report/picks.rst",
            category="Evaluation",
            labels={"figure": "picks against the oracle"},
        ),
    log:
        f"{RESULTS}/logs/plot_picks.log",
    benchmark:
        f"{RESULTS}/benchmarks/plot_picks.tsv"
    group:
        "figures"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../workflow_scripts/plot_picks.py"


rule plot_smoother_curves:
    input:
        pool=f"{RESULTS}/pool/correctness.parquet",
        models=f"{RESULTS}/pool/models.parquet",
        pairs=f"{RESULTS}/smoother/pairs.parquet",
        bandwidth=f"{RESULTS}/smoother/bandwidth.parquet",
        new_task_distances=new_task_distance_rows,
    output:
        report(
            f"{FIGURES}/smoother_curves.png",
            caption="../report/smoother.rst",
            category="Smoother",
            labels={"figure": "fitted curves"},
        ),
    log:
        f"{RESULTS}/logs/plot_smoother_curves.log",
    benchmark:
        f"{RESULTS}/benchmarks/plot_smoother_curves.tsv"
    group:
        "figures"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    params:
        bandwidth=routing_params()["bandwidth"],
        descriptor=routing_params()["descriptor"],
    script:
        "../workflow_scripts/plot_smoother_curves.py"


rule plot_task_distances:
    input:
        distance_matrix=f"{RESULTS}/distances.parquet",
        new_task_distances=new_task_distance_rows,
    output:
        report(
            f"{FIGURES}/task_distances.png",
            caption="../report/distances.rst",
            category="Task distances",
            labels={"figure": "distance heatmap"},
        ),
    log:
        f"{RESULTS}/logs/plot_task_distances.log",
    benchmark:
        f"{RESULTS}/benchmarks/plot_task_distances.tsv"
    group:
        "figures"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../workflow_scripts/plot_task_distances.py"


rule plot_new_task_ranking:
    input:
        f"{RESULTS}/scores/{{new_task}}.parquet",
    output:
        report(
            f"{FIGURES}/ranking_{{new_task}}.png",
            caption="../report/ranking_figure.rst",
            category="New tasks",
            subcategory="{new_task}",
            labels={"task": "{new_task}", "file": "figure"},
        ),
    log:
        f"{RESULTS}/logs/plot_new_task_ranking/{{new_task}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/plot_new_task_ranking/{{new_task}}.tsv"
    group:
        "figures"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../workflow_scripts/plot_new_task_ranking.py"
