from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config.yaml"


validate(config, "config.schema.yaml")


include: "rules/common.smk"
include: "rules/benchmark.smk"
include: "rules/embed.smk"
include: "rules/neighbours.smk"
include: "rules/smoother.smk"
include: "rules/scores.smk"
include: "rules/report.smk"


rule all:
    input:
        all_outputs,
    default_target: True
