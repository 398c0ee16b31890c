#!/usr/bin/env bash
# How fast a real run notices faults and comes back from them (issue 13):
#   - a site's death to its drop: its flare-client SIGKILLed (flare-run sees
#     the process end), and its rank 0 SIGSTOPped (the server hears no
#     heartbeat for server.heartbeat_timeout_s);
#   - a server restart to the next round starting: flare-run SIGKILLed after a
#     round's checkpoint, then `flare-run --resume`, timed from its start to
#     its "round K/N: training on" line.
# Each is measured REPEATS times; the figures and their spread are printed.
# The heartbeat timeout is the baseline the silent-site figure is set against.
# Usage: bench/liveness/run.sh [BUILD_DIR] [REPEATS]
set -euo pipefail

build=$(cd "${1:-build}" && pwd)
repeats=${2:-3}
bin=$build/bin
heartbeat_timeout_s=2
work=$(mktemp -d /tmp/flare-liveness.XXXXXX)
trap 'pkill -KILL -f "$work/" 2>/dev/null || true; rm -rf "$work"' EXIT

"$bin/flare-make-cifar" --out "$work/data" --train 600 --test 100 --seed 1 > /dev/null
write_job() {  # $1: workspace
  cat > "$work/job.toml" <<EOF
[job]
name = "liveness"
num_rounds = 40
min_clients = 2
[clients]
count = 3
devices = 1
accelerator = "cpu"
[data]
dir = "$work/data"
[trainer]
plugin = "cifar10"
[trainer.config]
batch_size = 16
val_fraction = 0.2
[server]
answer_timeout_s = 3
heartbeat_interval_s = 0.5
heartbeat_timeout_s = $heartbeat_timeout_s
reconnect_timeout_s = 30
round_timeout_s = 60
EOF
  echo "$1"
}

now_s() { echo "${EPOCHREALTIME}"; }
# The pid of program $2 whose command line names workspace $1 and holds $3.
pid_of() {
  local pid
  for pid in $(pgrep -f -- "$3" || true); do
    local argv
    argv=$(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null) || continue
    [[ $argv == *"$1"* && ${argv%% *} == */"$2" ]] && { echo "$pid"; return; }
  done
}
wait_for() {  # $1: a command that succeeds once; up to 120 s
  for _ in $(seq 1200); do eval "$1" && return 0; sleep 0.1; done
  echo "liveness: timed out waiting for: $1" >&2
  return 1
}
# The "time" of the first site_dropped line for site-2 in run folder $1.
drop_time() {
  /usr/bin/python3 - "$1/metrics.jsonl" <<'EOF'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("kind") == "site_dropped" and r.get("site") == "site-2":
        print(r["time"]); break
EOF
}

measure_drop() {  # $1: "client" (SIGKILL the supervisor) or "rank0" (SIGSTOP rank 0)
  local ws=$work/ws-$1-$2 run pid at dropped
  rm -rf "$ws"
  (cd "$work" && "$bin/flare-run" "$work/job.toml" --workspace "$ws" \
      > "$work/out-$1-$2" 2>&1 &)
  run=$ws/run-1
  wait_for "compgen -G '$run/checkpoints/*.ckpt' > /dev/null"
  if [[ $1 == client ]]; then
    pid=$(pid_of "$ws" flare-client "--site site-2")
    at=$(now_s); kill -KILL "$pid"
  else
    pid=$(pid_of "$ws" flare-worker "--site site-2 ")  # its only rank (devices = 1)
    at=$(now_s); kill -STOP "$pid"
  fi
  wait_for "[[ -n \$(drop_time $run) ]]"
  dropped=$(drop_time "$run")
  [[ $1 == rank0 ]] && kill -CONT "$pid" 2>/dev/null || true
  pkill -KILL -f -- "$ws" 2>/dev/null || true
  sleep 0.5
  /usr/bin/python3 -c "print(f'{$dropped - $at:.2f}')"
}

measure_restart() {
  local ws=$work/ws-restart-$1 run started line
  rm -rf "$ws"
  (cd "$work" && "$bin/flare-run" "$work/job.toml" --workspace "$ws" \
      > "$work/out-restart-$1" 2>&1 &)
  run=$ws/run-1
  wait_for "compgen -G '$run/checkpoints/*.ckpt' > /dev/null"
  pkill -KILL -f -- "flare-run $work/job.toml --workspace $ws" || true
  wait_for "! pgrep -f -- '$ws' > /dev/null"
  started=$(now_s)
  # The first line that starts a round after the resume.
  while IFS= read -r line; do
    if [[ $line == *"training on"* ]]; then
      /usr/bin/python3 -c "print(f'{${EPOCHREALTIME} - $started:.2f}')"
      break
    fi
  done < <("$bin/flare-run" --resume "$run" 2>&1)
  pkill -KILL -f -- "$ws" 2>/dev/null || true
  sleep 0.5
}

write_job "$work" > /dev/null
spread() { tr ' ' '\n' | sort -n | awk 'NF {v[n++]=$1} END {printf "median %s s, range %s-%s s", v[int(n/2)], v[0], v[n-1]}'; }
kill_drop='' stop_drop='' restart=''
for i in $(seq "$repeats"); do
  kill_drop+=" $(measure_drop client "$i")"
  stop_drop+=" $(measure_drop rank0 "$i")"
  restart+=" $(measure_restart "$i")"
done
echo "site client SIGKILLed -> dropped:${kill_drop} ($(spread <<< "$kill_drop"))"
echo "site rank 0 SIGSTOPped -> dropped:${stop_drop} ($(spread <<< "$stop_drop")); baseline: heartbeat_timeout_s = $heartbeat_timeout_s"
echo "flare-run --resume start -> next round starts:${restart} ($(spread <<< "$restart"))"
