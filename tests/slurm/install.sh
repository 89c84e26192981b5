#!/usr/bin/env bash
# Install a one-node SLURM (Debian slurm-wlm) and munge, unless already there.
# Needs root and apt-get; exits non-zero with the reason when either is missing or apt fails.
set -euo pipefail

needed=(sbatch squeue scancel sinfo scontrol slurmctld slurmd munged mungekey)
missing=()
for tool in "${needed[@]}"; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "slurm and munge already installed: $(slurmctld -V)"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "installing slurm-wlm and munge needs root (missing: ${missing[*]})" >&2
    exit 2
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "apt-get is absent: cannot install slurm-wlm and munge (missing: ${missing[*]})" >&2
    exit 2
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Recommends pull in dev headers and GPU plugins a test cluster never uses.
apt-get install -y -qq --no-install-recommends slurm-wlm munge
echo "installed: $(slurmctld -V)"
