#!/usr/bin/env bash
# Stop the test cluster that tests/slurm/start.sh DIR started: cancel its jobs, then end
# slurmd, slurmctld and munged by the PIDs in DIR/*.pid (SIGTERM, SIGKILL after 20 s), and
# remove the /run/slurm/conf link that start.sh made.
set -uo pipefail

dir=$(realpath -m "${1:?usage: stop.sh DIR}")
export SLURM_CONF=$dir/slurm.conf
if [ -f "$dir/slurmctld.pid" ] && command -v scancel >/dev/null 2>&1; then
    scancel --full --quiet --user=root 2>/dev/null || true
fi

status=0
for daemon in slurmd slurmctld munged; do
    pidfile=$dir/$daemon.pid
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    # A stale pid file must not make us signal an unrelated process.
    if [ -z "$pid" ] || ! grep -q "$daemon" "/proc/$pid/comm" 2>/dev/null; then
        rm -f "$pidfile"
        continue
    fi
    kill -TERM "$pid"
    for _ in $(seq 40); do
        [ -d "/proc/$pid" ] || break
        sleep 0.5
    done
    if [ -d "/proc/$pid" ]; then
        echo "$daemon ($pid) ignored SIGTERM; sending SIGKILL" >&2
        kill -KILL "$pid" || status=1
    fi
    rm -f "$pidfile"
done
if [ "$(readlink /run/slurm/conf 2>/dev/null)" = "$dir" ]; then
    rm -f /run/slurm/conf
    rmdir /run/slurm 2>/dev/null || true
fi
exit $status
