#!/usr/bin/env bash
# A live single-node SLURM on this machine, for the tests marked `slurm` and for trying
# `eelsbatch ... --cluster slurm` by hand.
#
#   bash workflows/slurm-single-node.sh start    # install if missing, configure, start, wait until idle
#   bash workflows/slurm-single-node.sh status   # sinfo + squeue; exit 1 when SLURM does not answer
#   bash workflows/slurm-single-node.sh stop     # cancel every job, stop slurmd, slurmctld and munged
#
# Runs as root on a Debian/Ubuntu machine (Debian 12 ships SLURM 22.05). It writes a minimal
# configuration: one node `localhost` with this machine's CPUs and memory (from `slurmd -C`), one
# partition `debug` (the default, MaxTime 1 day), munge authentication, no cgroup plugins
# (proctrack/linuxproc, task/none), no accounting database. Every step is idempotent: `start`
# on a running SLURM only checks it, and `stop` on a stopped one does nothing.
#
# The node also offers SLURM_FAKE_GPUS (default 2; 0 for none) GPU slots with no device behind
# them (empty files as gres device files), so that `--gres=gpu:N` jobs are scheduled and eelsbatch's one-worker-
# per-GPU mapping can be tested on a machine without GPUs. Nothing runs on them.
#
# Environment: SLURM_WAIT_S (default 60) bounds the wait for the node to become idle.
set -euo pipefail

CONF_DIR=/etc/slurm
CONF=$CONF_DIR/slurm.conf
MARKER="# written by eelsbatch workflows/slurm-single-node.sh"
PARTITION=debug
NODE=localhost
STATE_DIR=/var/spool/slurmctld
SPOOL_DIR=/var/spool/slurmd
LOG_DIR=/var/log/slurm
RUN_DIR=/run/slurm
MUNGE_KEY=/etc/munge/munge.key
MUNGE_RUN=/run/munge
WAIT_S=${SLURM_WAIT_S:-60}
FAKE_GPUS=${SLURM_FAKE_GPUS:-2}

say() { echo "slurm-single-node: $*"; }
die() { echo "slurm-single-node: error: $*" >&2; exit 1; }

pid_alive() {  # pid_alive PIDFILE: the process named in PIDFILE is running
    [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

install_packages() {
    local missing=()
    command -v slurmctld >/dev/null || missing+=(slurmctld)
    command -v slurmd >/dev/null || missing+=(slurmd)
    command -v sinfo >/dev/null || missing+=(slurm-client)
    command -v munged >/dev/null || missing+=(munge)
    [ ${#missing[@]} -eq 0 ] && return 0
    command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get to install them"
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || die "apt-get update failed"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
        || die "apt-get install ${missing[*]} failed"
}

node_line() {  # this machine's hardware as SLURM sees it, renamed to $NODE
    local line
    line=$(slurmd -C 2>/dev/null | head -n 1) || true
    [[ $line == NodeName=* ]] || die "slurmd -C did not describe this machine (got: ${line:-nothing})"
    # NodeName=<host> CPUs=.. Boards=.. SocketsPerBoard=.. CoresPerSocket=.. ThreadsPerCore=.. RealMemory=..
    local gres=""
    [ "$FAKE_GPUS" -gt 0 ] && gres=" Gres=gpu:$FAKE_GPUS"
    echo "NodeName=$NODE ${line#NodeName=* }$gres State=UNKNOWN"
}

write_gres() {  # returns 0 when the file changed
    local new="$MARKER" i
    if [ "$FAKE_GPUS" -gt 0 ]; then
        # SLURM counts a GPU only where gres.conf names a device file; these are empty files.
        mkdir -p "$RUN_DIR"
        for i in $(seq 0 $((FAKE_GPUS - 1))); do touch "$RUN_DIR/fake-gpu$i"; done
        new+=$'\n'"Name=gpu File=$RUN_DIR/fake-gpu[0-$((FAKE_GPUS - 1))]"
    fi
    if [ -e "$CONF_DIR/gres.conf" ] && [ "$(cat "$CONF_DIR/gres.conf")" == "$new" ]; then
        return 1
    fi
    printf '%s\n' "$new" >"$CONF_DIR/gres.conf"
    return 0
}

write_config() {  # returns 0 when the file changed, 1 when it was already current
    if [ -e "$CONF" ] && ! grep -qxF "$MARKER" "$CONF"; then
        die "$CONF exists and was not written by this script; refusing to overwrite it"
    fi
    mkdir -p "$CONF_DIR" "$STATE_DIR" "$SPOOL_DIR" "$LOG_DIR" "$RUN_DIR"
    local new
    new=$(cat <<EOF
$MARKER
ClusterName=eelsbatch
SlurmctldHost=$NODE
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
StateSaveLocation=$STATE_DIR
SlurmdSpoolDir=$SPOOL_DIR
SlurmctldPidFile=$RUN_DIR/slurmctld.pid
SlurmdPidFile=$RUN_DIR/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
MinJobAge=30
GresTypes=gpu
$(node_line)
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=1-00:00:00 State=UP
EOF
)
    if [ -e "$CONF" ] && [ "$(cat "$CONF")" == "$new" ]; then
        return 1
    fi
    printf '%s\n' "$new" >"$CONF"
    say "wrote $CONF"
    return 0
}

start_munge() {
    if [ ! -s "$MUNGE_KEY" ]; then
        mkdir -p "$(dirname "$MUNGE_KEY")"
        dd if=/dev/urandom of="$MUNGE_KEY" bs=1024 count=1 status=none
        say "wrote a new munge key $MUNGE_KEY"
    fi
    chown munge:munge "$MUNGE_KEY" && chmod 0400 "$MUNGE_KEY"
    mkdir -p "$MUNGE_RUN" /var/log/munge /var/lib/munge
    chown munge:munge "$MUNGE_RUN" /var/log/munge /var/lib/munge
    chmod 0755 "$MUNGE_RUN"
    if pid_alive "$MUNGE_RUN/munged.pid"; then
        return 0
    fi
    runuser -u munge -- munged || die "munged did not start (see /var/log/munge/munged.log)"
    munge -n | unmunge >/dev/null || die "munge does not round-trip a credential"
}

stop_slurm_daemons() {
    scontrol shutdown >/dev/null 2>&1 || true
    local pidfile i
    for pidfile in "$RUN_DIR/slurmd.pid" "$RUN_DIR/slurmctld.pid"; do
        for i in $(seq 1 20); do pid_alive "$pidfile" || break; sleep 0.5; done
        if pid_alive "$pidfile"; then kill "$(cat "$pidfile")" 2>/dev/null || true; sleep 1; fi
        rm -f "$pidfile"
    done
}

node_state() {
    sinfo -h -n "$NODE" -o '%T' 2>/dev/null | head -n 1
}

wait_idle() {
    local state="" waited=0
    while [ "$waited" -lt "$WAIT_S" ]; do
        state=$(node_state || true)
        case "$state" in
            idle|mixed|allocated|completing) say "node $NODE is $state, partition $PARTITION ready"; return 0 ;;
            down*|drain*|drained*) scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true ;;
        esac
        sleep 1
        waited=$((waited + 1))
    done
    die "node $NODE not idle after ${WAIT_S}s (state: ${state:-no answer}); see $LOG_DIR/slurmctld.log and $LOG_DIR/slurmd.log"
}

start() {
    [ "$(id -u)" -eq 0 ] || die "must run as root (it installs packages and starts system daemons)"
    install_packages
    local changed=0
    write_config && changed=1
    write_gres && changed=1
    start_munge
    if [ "$changed" -eq 1 ] && { pid_alive "$RUN_DIR/slurmctld.pid" || pid_alive "$RUN_DIR/slurmd.pid"; }; then
        say "configuration changed: restarting the SLURM daemons"
        stop_slurm_daemons
    fi
    if ! pid_alive "$RUN_DIR/slurmctld.pid"; then
        slurmctld || die "slurmctld did not start (see $LOG_DIR/slurmctld.log)"
    fi
    if ! pid_alive "$RUN_DIR/slurmd.pid"; then
        slurmd -N "$NODE" || die "slurmd did not start (see $LOG_DIR/slurmd.log)"
    fi
    wait_idle
}

stop() {
    if command -v squeue >/dev/null && squeue -h >/dev/null 2>&1; then
        local jobs
        jobs=$(squeue -h -o '%A' | tr '\n' ' ')
        if [ -n "${jobs// /}" ]; then
            say "cancelling jobs $jobs"
            # shellcheck disable=SC2086
            scancel $jobs || true
        fi
    fi
    stop_slurm_daemons
    if pid_alive "$MUNGE_RUN/munged.pid"; then
        kill "$(cat "$MUNGE_RUN/munged.pid")" 2>/dev/null || true
    fi
    say "stopped"
}

status() {
    command -v sinfo >/dev/null || die "SLURM is not installed"
    sinfo || die "SLURM does not answer (is the controller running? try: $0 start)"
    squeue
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
