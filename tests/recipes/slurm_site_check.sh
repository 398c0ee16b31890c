#!/usr/bin/env bash
# deploy/slurm/flare-site.sbatch, two ways:
#   usage SCRIPT    its refusals, run outside Slurm (no Slurm needed)
#   cluster SCRIPT  submitted to a throw-away Slurm cluster on this machine
#                   (slurmctld and two slurmd, nodes n1 and n2, auth/none,
#                   config and state in a temp folder) with a recorder in
#                   place of flare-client (FLARE_BIN): each node's arguments
#                   are checked, then scancel must reach each node's program
#                   as SIGTERM. Exit 77 (skipped, reason printed) when Slurm
#                   is not installed or cannot run here.
set -euo pipefail
mode="$1"
script="$(realpath "$2")"
tmp="$(mktemp -d)"
daemon_pids=()
job=""
cleanup() {
  # The job's steps first (slurmstepd outlives its slurmd), then the daemons.
  if [ -n "$job" ]; then
    scancel "$job" 2>/dev/null || true
    for _ in $(seq 60); do
      [ -z "$(squeue -h -j "$job" 2>/dev/null)" ] && break
      sleep 0.5
    done
  fi
  for pid in "${daemon_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${daemon_pids[@]}"; do
    for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# expect_refusal WHAT EXIT_CODE MESSAGE_PART COMMAND...
expect_refusal() {
  local what="$1" code="$2" part="$3"
  shift 3
  local status=0 out
  out="$("$@" 2>&1)" || status=$?
  if [ "$status" -ne "$code" ] || [[ "$out" != *"$part"* ]]; then
    fail "$what: expected exit $code and '$part', got exit $status: $out"
  fi
}

if [ "$mode" = usage ]; then
  mkdir -p "$tmp/startup" "$tmp/bin"
  touch "$tmp/startup/local.toml"
  expect_refusal "no startup folder" 2 "usage: sbatch" env -u SLURM_JOB_ID bash "$script"
  expect_refusal "outside Slurm" 2 "not inside a Slurm job" env -u SLURM_JOB_ID bash "$script" "$tmp/startup"
  expect_refusal "not a startup folder" 2 "$tmp: not a startup folder (no local.toml" \
    env SLURM_JOB_ID=7 SLURM_JOB_NODELIST=n1 bash "$script" "$tmp"
  expect_refusal "no flare-client" 2 "$tmp/bin/flare-client: not found (set FLARE_BIN" \
    env SLURM_JOB_ID=7 SLURM_JOB_NODELIST=n1 FLARE_BIN="$tmp/bin" bash "$script" "$tmp/startup"
  [ "$failures" -eq 0 ] || exit 1
  echo "flare-site.sbatch: refusals checked"
  exit 0
fi

skip() { echo "skipped: $*"; exit 77; }
for program in slurmctld slurmd sbatch srun scontrol scancel squeue sinfo; do
  command -v "$program" >/dev/null || skip "$program is not installed (Debian package slurm-wlm)"
done
[ "$(id -u)" -eq 0 ] || skip "slurmd must run as root to start jobs"
plugin_dir="$(dirname "$(find /usr/lib -name auth_none.so -path '*slurm*' -print -quit)")"
[ -f "$plugin_dir/auth_none.so" ] || skip "Slurm's auth/none plugin is not installed"

read -r ctld_port node1_port node2_port < <(/usr/bin/python3 -c '
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))')
host="$(hostname -s)"
mkdir -p "$tmp/state" "$tmp/spool/n1" "$tmp/spool/n2" "$tmp/log"
export SLURM_CONF="$tmp/slurm.conf"
cat > "$SLURM_CONF" <<CONF
ClusterName=flarerecipes
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
AuthType=auth/none
CredType=cred/none
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$tmp/state
SlurmdSpoolDir=$tmp/spool/%n
SlurmctldPidFile=$tmp/slurmctld.pid
SlurmdPidFile=$tmp/slurmd-%n.pid
SlurmctldLogFile=$tmp/log/slurmctld.log
SlurmdLogFile=$tmp/log/slurmd-%n.log
ProctrackType=proctrack/pgid
TaskPlugin=task/none
SelectType=select/linear
MpiDefault=none
SwitchType=switch/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
KillWait=5
NodeName=n1 NodeHostname=$host NodeAddr=127.0.0.1 Port=$node1_port CPUs=1 State=UNKNOWN
NodeName=n2 NodeHostname=$host NodeAddr=127.0.0.1 Port=$node2_port CPUs=1 State=UNKNOWN
PartitionName=recipes Nodes=n1,n2 Default=YES MaxTime=10 State=UP
CONF
# -D: in the foreground, so each is this script's child and is ended by pid.
slurmctld -D -i -f "$SLURM_CONF" > "$tmp/log/slurmctld.out" 2>&1 &
daemon_pids+=($!)
for node in n1 n2; do
  slurmd -D -N "$node" -f "$SLURM_CONF" > "$tmp/log/slurmd-$node.out" 2>&1 &
  daemon_pids+=($!)
done
for _ in $(seq 60); do
  [ "$(sinfo -h -o '%D %T' 2>/dev/null)" = "2 idle" ] && break
  sleep 0.5
done
if [ "$(sinfo -h -o '%D %T' 2>/dev/null)" != "2 idle" ]; then
  tail -n 5 "$tmp"/log/*
  skip "a two-node Slurm cluster did not come up here in 30 s (logs above)"
fi

# The recorder: its arguments, one a line, then SIGTERM's arrival.
mkdir -p "$tmp/bin" "$tmp/records" "$tmp/site-1/startup"
touch "$tmp/site-1/startup/local.toml"
cat > "$tmp/bin/flare-client" <<'RECORDER'
#!/bin/bash
record="$RECORD_DIR/$SLURMD_NODENAME"
printf '%s\n' "$@" > "$record.args.part"
mv "$record.args.part" "$record.args"
trap 'echo SIGTERM > "$record.signal"; exit 0' TERM
sleep 300 &
wait $!
RECORDER
chmod +x "$tmp/bin/flare-client"

job="$(cd "$tmp" && RECORD_DIR="$tmp/records" FLARE_BIN="$tmp/bin" FLARE_MASTER_PORT=23456 \
  sbatch --parsable --nodes=2 --output="$tmp/job.out" "$script" "$tmp/site-1/startup" \
  --policy "$tmp/policy.toml" --data-dir "$tmp/data dir")"
for _ in $(seq 60); do
  [ -f "$tmp/records/n1.args" ] && [ -f "$tmp/records/n2.args" ] && break
  sleep 0.5
done

# expect_args NODE RANK: the node's recorded arguments.
expect_args() {
  local node="$1" rank="$2" expected
  expected="$(printf '%s\n' --startup "$tmp/site-1/startup" --nnodes 2 --master-addr n1 \
    --master-port 23456 --policy "$tmp/policy.toml" --data-dir "$tmp/data dir" \
    --node-rank "$rank" --workspace "$tmp/site-1/workspace/node-$rank")"
  if [ ! -f "$tmp/records/$node.args" ]; then
    fail "$node: flare-client never started"
  elif [ "$(cat "$tmp/records/$node.args")" != "$expected" ]; then
    fail "$node: arguments differ:"$'\n'"$(diff <(echo "$expected") "$tmp/records/$node.args")"
  fi
  [ -d "$tmp/site-1/workspace/node-$rank" ] || fail "$node: its workspace was not made"
}
expect_args n1 0
expect_args n2 1

scancel "$job"
for _ in $(seq 60); do
  [ -f "$tmp/records/n1.signal" ] && [ -f "$tmp/records/n2.signal" ] && break
  sleep 0.5
done
for node in n1 n2; do
  [ -f "$tmp/records/$node.signal" ] || fail "$node: scancel did not reach flare-client as SIGTERM"
done
if [ "$failures" -ne 0 ]; then
  echo "== job output"; cat "$tmp/job.out" 2>/dev/null || true
  exit 1
fi
echo "flare-site.sbatch: two nodes started with their ranks and the first node's address; scancel reached both"
