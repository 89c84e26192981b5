# The HELM source: index -> run selection (checkpoint) -> per-run downloads -> per-dataset
# correctness tables, in the same format as the table source's (rules/benchmark.smk).
if config["source"] == "helm":

    from llmrouter.helm.download import project_roots

    HELM = config["helm"]
    if not HELM["release"] and not HELM["suite"]:
        raise WorkflowError(
            "config helm: set `release` (or, for suites without releases, `suite`)"
        )
    if HELM["release"] and HELM["suite"]:
        # release has a default, so a suite written alone would be ignored in silence
        raise WorkflowError(
            f"config helm: suite {HELM['suite']!r} is read only with `release: null` (release "
            f"is {HELM['release']!r}); set helm.release to null to index the suite, or drop "
            "helm.suite"
        )
    HELM_INDEX = (
        f"{RESOURCES}/helm/{HELM['project']}/releases/{HELM['release']}/runs_to_run_suites.json"
        if HELM["release"]
        else f"{RESOURCES}/helm/{HELM['project']}/runs/{HELM['suite']}/run_specs.json"
    )
    HELM_ROOTS = project_roots(HELM["base_url"], HELM["project"], HELM["legacy_root"])

    if workflow.is_main_process and not Path(f"{RESULTS}/helm/runs.parquet").exists():
        # The checkpoint decides the DAG, so a dry run cannot list later jobs without it.
        print(
            f"[helm] no run list yet: `snakemake select_helm_runs` downloads the index from "
            f"{HELM_ROOTS[0]} (network), after which `snakemake -n` lists every job",
            file=sys.stderr,
        )

    ruleorder: prepare_helm_dataset > prepare_table_dataset

    # Network-bound and tiny: on a cluster they run on the submit host (compute nodes often
    # have no internet), not as thousands of sbatch jobs.
    localrules:
        fetch_helm_index,
        select_helm_runs,
        download_helm_run,
        report_helm_downloads,

    rule fetch_helm_index:
        output:
            HELM_INDEX,
        log:
            f"{RESULTS}/logs/fetch_helm_index.log",
        benchmark:
            f"{RESULTS}/benchmarks/fetch_helm_index.tsv"
        conda:
            CONDA_ENV
        threads: 1
        resources:
            mem_mb=1000,
            runtime=10,
            helm_downloads=1,
        params:
            roots=HELM_ROOTS,
            release=HELM["release"],
            suite=helm_index_suite(),
        script:
            "../workflow_scripts/fetch_helm_index.py"

    checkpoint select_helm_runs:
        input:
            HELM_INDEX,
        output:
            f"{RESULTS}/helm/runs.parquet",
        log:
            f"{RESULTS}/logs/select_helm_runs.log",
        benchmark:
            f"{RESULTS}/benchmarks/select_helm_runs.tsv"
        conda:
            CONDA_ENV
        threads: 1
        resources:
            mem_mb=1000,
            runtime=5,
        params:
            include=HELM["runs"]["include"],
            exclude=HELM["runs"]["exclude"],
            models=HELM["models"],
            suite=helm_index_suite(),
        script:
            "../workflow_scripts/select_helm_runs.py"

    rule download_helm_run:
        output:
            f"{RESULTS}/helm/downloads/{{suite}}/{{run}}.parquet",
        log:
            f"{RESULTS}/logs/download_helm_run/{{suite}}/{{run}}.log",
        benchmark:
            f"{RESULTS}/benchmarks/download_helm_run/{{suite}}/{{run}}.tsv"
        wildcard_constraints:
            suite="[^/]+",
            run="[^/]+",
        conda:
            CONDA_ENV
        threads: 1
        resources:
            mem_mb=1000,
            runtime=30,
            helm_downloads=1,
        params:
            roots=HELM_ROOTS,
            folder=helm_run_folder,
            on_missing=HELM["on_missing"],
            metrics=helm_run_metrics,
        script:
            "../workflow_scripts/download_helm_run.py"

    rule prepare_helm_dataset:
        input:
            downloads=helm_dataset_downloads,
            index=HELM_INDEX,
        output:
            f"{RESULTS}/benchmark/{{dataset}}.parquet",
        log:
            f"{RESULTS}/logs/prepare_helm_dataset/{{dataset}}.log",
        benchmark:
            f"{RESULTS}/benchmarks/prepare_helm_dataset/{{dataset}}.tsv"
        group:
            "pool"
        conda:
            CONDA_ENV
        threads: 1
        resources:
            mem_mb=4000,
            runtime=10,
        params:
            metrics=HELM["metrics"],
            suite=helm_index_suite(),
            on_missing=HELM["on_missing"],
        script:
            "../workflow_scripts/prepare_helm_dataset.py"

    rule report_helm_downloads:
        input:
            downloads=helm_downloads,
        output:
            missing=f"{RESULTS}/helm/missing_runs.tsv",
            downloads=f"{RESULTS}/helm/downloads.parquet",
        log:
            f"{RESULTS}/logs/report_helm_downloads.log",
        benchmark:
            f"{RESULTS}/benchmarks/report_helm_downloads.tsv"
        conda:
            CONDA_ENV
        threads: 1
        resources:
            mem_mb=2000,
            runtime=5,
        script:
            "../workflow_scripts/report_helm_downloads.py"
