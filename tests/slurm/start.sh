#!/usr/bin/env bash
# Start a one-node SLURM on localhost with every file under one directory.
#   tests/slurm/start.sh DIR [CPUS] [REAL_MEMORY_MB]
# Writes DIR/slurm.conf, runs munged, slurmctld and slurmd as root (pid files DIR/*.pid),
# waits until the node takes jobs, and prints `export SLURM_CONF=DIR/slurm.conf`.
# Clients (sbatch, squeue, Snakemake's slurm executor) need SLURM_CONF in their environment;
# for the nested srun inside jobs it links /run/slurm/conf to DIR (see below).
# Needs root. tests/slurm/stop.sh DIR stops every daemon this started, by PID, and the link.
set -euo pipefail

dir=$(realpath -m "${1:?usage: start.sh DIR [CPUS] [REAL_MEMORY_MB]}")
cpus=${2:-$(nproc)}
# Below the machine's total so slurmd does not drain the node for lack of memory.
memory=${3:-$(($(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo) / 2))}
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
ctld_port=${SLURMCTLD_PORT:-$(free_port)}
slurmd_port=${SLURMD_PORT:-$(free_port)}
host=$(hostname -s)

mkdir -p "$dir"/{munge,state,spool,log}
# munged refuses keys and sockets in group- or world-writable places.
chmod 700 "$dir" "$dir/munge"
[ -f "$dir/munge/munge.key" ] || mungekey --create --keyfile="$dir/munge/munge.key"
chmod 600 "$dir/munge/munge.key"

cat > "$dir/slurm.conf" <<CONF
# One-node test cluster written by tests/slurm/start.sh
ClusterName=routingtest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/%n
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
# No cgroups inside containers: plain process tracking, no task binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
MpiDefault=none
ReturnToService=2
# Without slurmdbd, squeue is the status source: finished jobs must stay visible for
# longer than the executor's polling interval (the plugin wants >= 3 x its first wait).
MinJobAge=300
SchedulerParameters=sched_interval=2
SlurmdTimeout=60
# Trust the CPUs and memory written here over what slurmd detects: a test node may claim more
# CPUs than the machine has, so that one stage's jobs (mostly Python start-up) run side by side.
SlurmdParameters=config_overrides
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF

export SLURM_CONF=$dir/slurm.conf

# Snakemake's slurm-jobstep executor strips SLURM_* (SLURM_CONF too) from the environment of
# the srun it starts inside each job, so clients on the node must find the configuration
# where configless slurmd leaves it: /run/slurm/conf/slurm.conf (read when /etc/slurm/slurm.conf
# is absent). An existing cluster's configuration is never replaced.
if [ -e /etc/slurm/slurm.conf ]; then
    echo "/etc/slurm/slurm.conf exists: this machine has its own SLURM configuration" >&2
    exit 1
fi
if [ -e /run/slurm/conf ] || [ -L /run/slurm/conf ]; then
    target=$(readlink /run/slurm/conf || true)
    owner=$(cat "$target/slurmctld.pid" 2>/dev/null || true)
    if [ -z "$target" ] || grep -qs slurmctld "/proc/${owner:-0}/comm"; then
        echo "/run/slurm/conf is in use (-> ${target:-not a link}): another SLURM runs here" >&2
        exit 1
    fi
    rm -f /run/slurm/conf  # left behind by a test cluster that is gone
fi
mkdir -p /run/slurm
ln -s "$dir" /run/slurm/conf

munged --socket="$dir/munge/munge.socket" --key-file="$dir/munge/munge.key" \
    --pid-file="$dir/munged.pid" --log-file="$dir/log/munged.log" \
    --seed-file="$dir/munge/munge.seed" --force
slurmctld -f "$SLURM_CONF" -i
slurmd -f "$SLURM_CONF"

for _ in $(seq 60); do
    state=$(sinfo --noheader --format=%t 2>/dev/null | tr -d ' ' || true)
    if [ "$state" = "idle" ]; then
        echo "export SLURM_CONF=$SLURM_CONF"
        exit 0
    fi
    sleep 1
done
echo "SLURM did not come up within 60 s (node state: '${state:-none}'); logs in $dir/log" >&2
tail -n 20 "$dir"/log/*.log >&2 || true
exit 1
