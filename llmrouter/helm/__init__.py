"""The HELM source: find runs in HELM's public bucket, download them, turn them into tables.

index     run names, release/suite indexes, run selection, dataset names, metrics
download  robust HTTP transfer (timeouts, retries, atomic files, JSON validation)
reader    parsing instances.json, display_predictions.json, per_instance_stats.json
convert   runs of one dataset -> its correctness table (the `table` source's format)
"""
