import sys

from snakemake.utils import min_version, validate

min_version("9.0")

sys.path.insert(0, workflow.basedir)

from llmrouter.config_schema import (
    check_config,
    command_line_typed,
    config_sources,
    keys_sorted,
    read_schema,
)


configfile: "config.yaml"


SCHEMA_NAME = "config.schema.yaml"
SCHEMA = f"{workflow.basedir}/{SCHEMA_NAME}"
# Read once for the --config typing and the check below (2 ms of every start with libyaml).
SCHEMA_CONTENT = read_schema(SCHEMA)


# Snakemake reads the values inside a nested --config value as strings (knn='{"k": 10}' gives
# k '10'); each gets the type the same text has in a config file, where the schema takes it.
if workflow.config_settings.config:
    config.update(
        command_line_typed(
            config,
            workflow.config_settings.config,
            SCHEMA_CONTENT,
        )
    )

# validate fills in the schema's defaults but stops at the first problem and prints the whole
# schema after it; the check after it lists every problem, one line each, and replaces
# validate's error with its own. It also runs on a config validate takes: it rejects 5.0 for
# an integer and NaN (2 ms).
CONFIG_SOURCES = config_sources(
    workflow.configfiles,
    workflow.overwrite_configfiles,
    workflow.config_settings.replace_workflow_config,
)
try:
    validate(config, SCHEMA)
finally:
    check_config(
        config,
        SCHEMA_CONTENT,
        SCHEMA_NAME,
        CONFIG_SOURCES,
        workflow.config_settings.config,
    )

# Params holding a config section then print the same, whatever order its keys were set in.
config.update(keys_sorted(config))


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
