#!/usr/bin/env bash
# A single-node Slurm cluster on this machine, for the Slurm tests (test/slurm.test.ts) and for
# trying `kd/submit.ts` without a cluster.
#   scripts/slurm-local.sh up       install (Debian: slurm-wlm, munge) if needed, start munged,
#                                   slurmctld and slurmd; idempotent; waits until the node is idle
#   scripts/slurm-local.sh down     stop only the daemons this script started
#   scripts/slurm-local.sh status   what runs, and sinfo
# Needs root (it writes /etc/slurm/slurm.conf and starts the daemons). A machine where Slurm
# already answers (a real cluster's login node) is left alone. Files: /etc/slurm/slurm.conf
# (marked as ours: never overwrites one that is not), state under /var/spool/roskd-slurm.
set -euo pipefail
STATE=/var/spool/roskd-slurm
CONF=/etc/slurm/slurm.conf
MARK='# written by roskd scripts/slurm-local.sh'
cmd="${1:-}"

say() { echo "slurm-local: $*"; }
alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
pidof_file() { [ -s "$1" ] && cat "$1" || true; }

# Records the pid of a daemon we started, so `down` stops that one and nothing else.
remember() { echo "$2" >"$STATE/started.$1"; }

wait_pidfile() { # file, seconds
  for _ in $(seq 1 $((${2} * 10))); do
    local p
    p=$(pidof_file "$1")
    if alive "$p"; then echo "$p"; return 0; fi
    sleep 0.1
  done
  return 1
}

up() {
  if [ "$(id -u)" != 0 ]; then say "needs root (writes $CONF, starts daemons)"; exit 1; fi
  if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    if command -v apt-get >/dev/null; then
      say "installing slurm-wlm and munge (apt-get)"
      DEBIAN_FRONTEND=noninteractive apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
    else
      say "slurmctld/munged not found and no apt-get: install Slurm (>= 22.05) and MUNGE"; exit 1
    fi
  fi
  if [ -f "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
    if timeout 10 sinfo -h >/dev/null 2>&1; then say "a Slurm cluster already answers here ($CONF is not ours): nothing to do"; exit 0; fi
    say "$CONF exists and was not written by this script: refusing to overwrite it"; exit 1
  fi
  mkdir -p "$STATE" /var/spool/roskd-slurm/ctld /var/spool/roskd-slurm/d /var/log/slurm
  # ---- munge
  install -d -o munge -g munge -m 0755 /run/munge
  if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
    chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
  fi
  if ! alive "$(pidof_file /run/munge/munged.pid)"; then
    runuser -u munge -- /usr/sbin/munged
    remember munged "$(wait_pidfile /run/munge/munged.pid 10)"
    say "munged started"
  fi
  # ---- slurm.conf: this host as the one node, with its CPUs and memory
  local host node
  host=$(hostname -s)
  node=$(slurmd -C | head -1 | sed -E 's/RealMemory=([0-9]+)/RealMemory=\1/')
  local mem
  mem=$(sed -nE 's/.*RealMemory=([0-9]+).*/\1/p' <<<"$node")
  node=$(sed -E "s/RealMemory=[0-9]+/RealMemory=$((mem * 9 / 10))/" <<<"$node")
  local want
  want=$(cat <<EOF
$MARK (single-node test cluster; "down" stops its daemons)
ClusterName=roskd-local
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=/var/log/slurm/jobcomp.log
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=defer_batch=0
MinJobAge=300
KillWait=30
DefMemPerCPU=1024
MpiDefault=none
$node State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
)
  if [ ! -f "$CONF" ] || [ "$(cat "$CONF")" != "$want" ]; then
    echo "$want" >"$CONF"
    say "wrote $CONF"
    # a running daemon of ours reads the new file on a restart
    for d in slurmd slurmctld; do
      p=$(pidof_file "$STATE/$d.pid")
      if alive "$p"; then kill "$p"; for _ in $(seq 50); do alive "$p" || break; sleep 0.1; done; fi
    done
  fi
  # ---- daemons
  if ! alive "$(pidof_file "$STATE/slurmctld.pid")"; then
    slurmctld -i
    remember slurmctld "$(wait_pidfile "$STATE/slurmctld.pid" 20)"
    say "slurmctld started"
  fi
  if ! alive "$(pidof_file "$STATE/slurmd.pid")"; then
    slurmd
    remember slurmd "$(wait_pidfile "$STATE/slurmd.pid" 20)"
    say "slurmd started"
  fi
  for _ in $(seq 1 60); do
    st=$(sinfo -h -n "$host" -o %T 2>/dev/null || true)
    case "$st" in
      idle*|mixed*|allocated*) say "node $host is $st"; sinfo; return 0 ;;
      down*|drain*) scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true ;;
    esac
    sleep 0.5
  done
  say "node $host did not become idle (state: ${st:-none}); see /var/log/slurm/"; exit 1
}

down() {
  for d in slurmd slurmctld munged; do
    f="$STATE/started.$d"
    [ -f "$f" ] || continue
    p=$(cat "$f")
    if alive "$p" && grep -q "$d" "/proc/$p/comm" 2>/dev/null; then
      kill "$p"
      for _ in $(seq 100); do alive "$p" || break; sleep 0.1; done
      say "stopped $d (pid $p)"
    fi
    rm -f "$f"
  done
}

case "$cmd" in
  up) up ;;
  down) down ;;
  status)
    for d in munged slurmctld slurmd; do echo "$d: $(pgrep -x "$d" >/dev/null && echo running || echo stopped)"; done
    sinfo 2>&1 || true ;;
  *) echo "usage: $0 up|down|status"; exit 2 ;;
esac
