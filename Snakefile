from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config.yaml"


validate(config, "config.schema.yaml")


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/benchmark.smk"
include: "rules/helm.smk"
include: "rules/embed.smk"
include: "rules/neighbours.smk"
include: "rules/smoother.smk"
include: "rules/distances.smk"
include: "rules/bandwidth.smk"
include: "rules/scores.smk"
include: "rules/new_tasks.smk"
include: "rules/report.smk"
include: "rules/figures.smk"
include: "rules/ablation.smk"
include: "rules/cost.smk"


rule all:
    default_target: True
    input:
        all_outputs,
