#!/usr/bin/env bash
# Chaos: N iterations of a multi-round flare-run job on generated CIFAR-format
# data. In each, one process of the run (a rank, a site's supervisor or the
# server) gets SIGKILL, or SIGSTOP and SIGCONT after a pause shorter or longer
# than server.heartbeat_timeout_s, at a random time; then the script acts as an
# operator would: after a killed server, `flare-run --resume RUN_DIR`.
# Each iteration must end COMPLETED (exit 0, every round's global model) or
# FAILED with a reason (exit 1 and "the job failed: <reason>"), never a hang,
# a process left behind, or a model or checkpoint that does not parse or verify.
#
#   scripts/chaos.sh --iterations N [--seed S] [--only I] [--bin DIR] [--work DIR]
#                    [--rounds R] [--sites K] [--train-images N] [--window SECONDS]
#                    [--timeout SECONDS] [--victims LIST] [--signals LIST] [--keep]
#
# --seed: the choices of every iteration (default: from the clock); printed, and
#   `--seed S --only I` replays iteration I alone.
# --bin: flare-run, flare-make-cifar and (beside them) the plugins; default build/bin.
# --work: where data and workspaces go (default a temp folder, removed at the
#   end unless --keep or an iteration went wrong).
# --rounds (5), --sites (3, one CPU rank each; min_clients is one less),
#   --train-images (3000): the job. --window: the fault comes at a random time
#   in 0.5 s .. this after flare-run starts (if the victim's process is not up
#   yet, as soon as it is); default: the time a first, fault-free run of the
#   job takes here (which must complete). --timeout (120): an iteration's bound; past it
#   the iteration is a HANG and its processes are killed. --victims (default
#   rank,supervisor,server) and --signals (KILL,STOP) narrow the draws.
# One line per iteration, then a summary; exit 1 when an iteration hung, left a
# process, corrupted a file or ended without a clear reason; 2 on bad usage.
set -euo pipefail
export LC_ALL=C  # EPOCHREALTIME with a '.', whatever the caller's locale
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python=/usr/bin/python3
[[ -x $python ]] || python=python3

iterations='' seed='' only='' bin="$root/build/bin" work='' keep=0
rounds=5 sites=3 train_images=3000 window_s='' timeout_s=120
victims=rank,supervisor,server signals=KILL,STOP
heartbeat_timeout_ms=2000  # server.heartbeat_timeout_s of the job below
usage() { sed -n '11,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,3\}//' >&2; exit 2; }
while (($#)); do
  case $1 in
    --iterations) iterations=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --sites) sites=$2; shift 2 ;;
    --train-images) train_images=$2; shift 2 ;;
    --window) window_s=$2; shift 2 ;;
    --timeout) timeout_s=$2; shift 2 ;;
    --victims) victims=$2; shift 2 ;;
    --signals) signals=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    *) echo "chaos.sh: unknown option '$1'" >&2; usage ;;
  esac
done
for option in iterations rounds sites train_images window_s timeout_s; do
  name=${option%_s}
  [[ $option == window_s && -z $window_s ]] && continue
  [[ ${!option} =~ ^[1-9][0-9]*$ ]] ||
    { echo "chaos.sh: --${name//_/-}: expected an integer >= 1, found '${!option}'" >&2; usage; }
done
[[ -z $only || ($only =~ ^[1-9][0-9]*$ && $only -le $iterations) ]] ||
  { echo "chaos.sh: --only: expected an iteration 1..$iterations, found '$only'" >&2; usage; }
[[ $victims =~ ^(rank|supervisor|server)(,(rank|supervisor|server))*$ ]] ||
  { echo "chaos.sh: --victims: expected rank, supervisor and/or server, found '$victims'" >&2; usage; }
[[ $signals =~ ^(KILL|STOP)(,(KILL|STOP))*$ ]] ||
  { echo "chaos.sh: --signals: expected KILL and/or STOP, found '$signals'" >&2; usage; }
IFS=, read -ra victim_kinds <<< "$victims"
IFS=, read -ra signal_kinds <<< "$signals"
((sites >= 2)) || { echo "chaos.sh: --sites: expected at least 2, found $sites" >&2; usage; }
seed=${seed:-$((${EPOCHREALTIME//[!0-9]/} % 1000000))}
[[ $seed =~ ^[0-9]+$ ]] || { echo "chaos.sh: --seed: expected an integer, found '$seed'" >&2; usage; }
for program in flare-run flare-make-cifar; do
  [[ -x $bin/$program ]] || { echo "chaos.sh: --bin: no $program in $bin (build first)" >&2; exit 2; }
done

# --- processes --------------------------------------------------------------

# found: the pids whose command line names $1 (read from /proc), this script's
# own excluded (its --work may name the same folder).
processes_naming() {
  found=()
  local entry argv
  for entry in /proc/[0-9]*; do
    [[ ${entry#/proc/} == "$$" || ${entry#/proc/} == "$BASHPID" ]] && continue
    mapfile -d '' argv 2>/dev/null < "$entry/cmdline" || continue
    [[ "${argv[*]}" == *"$1"* ]] && found+=("${entry#/proc/}")
  done
  return 0
}

# found: those of the run's processes that run program $2 (flare-worker, ...).
processes_of() {
  local program=$2 pid argv matching=()
  processes_naming "$1"
  for pid in "${found[@]}"; do
    mapfile -d '' argv 2>/dev/null < "/proc/$pid/cmdline" || continue
    [[ ${argv[0]##*/} == "$program" ]] && matching+=("$pid")
  done
  found=("${matching[@]}")
}

# "site-2/rank0": whose process $1 is, from its --site and --rank arguments.
describe_process() {
  local argv i site='' rank=''
  mapfile -d '' argv 2>/dev/null < "/proc/$1/cmdline" || { echo "pid $1"; return; }
  for ((i = 0; i + 1 < ${#argv[@]}; i++)); do
    [[ ${argv[i]} == --site ]] && site=${argv[i + 1]}
    [[ ${argv[i]} == --rank ]] && rank=/rank${argv[i + 1]}
  done
  echo "${site:-${argv[0]##*/}}$rank (pid $1)"
}

# Stopped processes act on nothing but SIGKILL and SIGCONT: continue, then kill.
kill_all() {
  (($#)) || return 0
  kill -CONT "$@" 2>/dev/null || true
  kill -KILL "$@" 2>/dev/null || true
}

# Whether $1 (a child of this script) still runs: a zombie is done.
running() {
  local stat
  read -r stat 2>/dev/null < "/proc/$1/stat" || return 1
  stat=${stat##*) }
  [[ ${stat:0:1} != Z ]]
}

# --- clocks and choices -----------------------------------------------------

now_ms() { now=$((${EPOCHREALTIME//[!0-9]/} / 1000)); }
seconds() { printf '%d.%02ds' $(($1 / 1000)) $((($1 % 1000) / 10)); }
# picked: a random integer in [$1, $2]; bash's RANDOM, seeded per iteration.
# (Set here, never in a $(...) subshell, whose draws would not advance it.)
pick() { picked=$(($1 + (RANDOM * 32768 + RANDOM) % ($2 - $1 + 1))); }

# --- the job ------------------------------------------------------------------

cleanup() {
  local status=$?
  if [[ -n ${work:-} ]]; then
    processes_naming "$work/iter-"
    kill_all "${found[@]}"
    if ((keep || status != 0)); then echo "chaos: kept $work" >&2; else rm -rf "$work"; fi
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
if [[ -z $work ]]; then work=$(mktemp -d /tmp/flare-chaos.XXXXXX); else mkdir -p "$work"; fi
work=$(cd "$work" && pwd)

"$bin/flare-make-cifar" --out "$work/data" --train "$train_images" --test 100 --seed "$seed" \
  > /dev/null
min_clients=$((sites - 1))
cat > "$work/job.toml" <<EOF
# Written by scripts/chaos.sh: small and quick, with short liveness timeouts.
[job]
name = "chaos"
num_rounds = $rounds
min_clients = $min_clients
seed = $seed
[clients]
count = $sites
devices = 1
accelerator = "cpu"
max_restarts = 1
progress_timeout_s = 5
[data]
dir = "$work/data"
[trainer]
plugin = "cifar10"
[trainer.config]
batch_size = 16
val_fraction = 0.2
[aggregator]
plugin = "fedavg"
[server]
round_timeout_s = 30
worker_start_timeout_s = 60
answer_timeout_s = 3
heartbeat_interval_s = 0.5
heartbeat_timeout_s = $((heartbeat_timeout_ms / 1000))
reconnect_timeout_s = 30
EOF
can_resume=0
"$bin/flare-run" --help 2>&1 | grep -q -- '--resume' && can_resume=1
# The metrics lines that say the server noticed a fault.
detection_kinds='"kind": ?"(site_dropped|site_rejoined|resumed|failure)"'

# --- one iteration ------------------------------------------------------------

# Once the signal is sent: the first new metrics line that says the server
# noticed (a drop, a rejoin, a resume, a failure), timed when first seen.
# Sets detected (its kind) and detect_ms (from the signal); uses the caller's
# ws, signal_at, detections_before and now.
look_for_detection() {
  ((signal_at)) && [[ -z $detected ]] || return 0
  local lines
  lines=$(cat "$ws"/run-*/metrics.jsonl 2>/dev/null | grep -E "$detection_kinds" || true)
  if (($(grep -c . <<< "$lines") > detections_before)); then
    detect_ms=$((now - signal_at))
    detected=$(sed -n "$((detections_before + 1))p" <<< "$lines" |
      grep -oE '"kind": ?"[a-z_]+"' | cut -d'"' -f4)
  fi
}

# Starts flare-run with arguments $2... (output to $1) under a watcher that
# writes its exit status to $ws.rc: sets pid (flare-run's) and watcher. The
# watcher's stderr is dropped: bash's "Killed" notice for a killed server,
# which would otherwise land between the iteration lines.
start_flare_run() {
  local out=$1
  shift
  rm -f "$ws.pid" "$ws.rc"
  (
    "$bin/flare-run" "$@" > "$out" 2>&1 < /dev/null &
    echo $! > "$ws.pid"
    status=0
    wait $! || status=$?
    echo "$status" > "$ws.rc"
  ) 2>/dev/null &
  watcher=$!
  until [[ -s $ws.pid ]]; do sleep 0.01; done
  pid=$(< "$ws.pid")
}

# Iteration 0 is the fault-free baseline. Sets: outcome, reason, rounds_done,
# detected, detect_ms, orphans, corrupted, signal_text, victim_of_iteration, took_ms.
run_iteration() {
  local i=$1 ws pid watcher out victim_kind signal pause_ms=0 fault_at_ms started rc=''
  ws="$work/iter-$(printf '%03d' "$i")"
  out="$ws.out"
  RANDOM=$(((seed * 7919 + i) % 2147483647))
  victim_kind=${victim_kinds[RANDOM % ${#victim_kinds[@]}]}
  signal=${signal_kinds[RANDOM % ${#signal_kinds[@]}]}
  if [[ $signal == STOP ]]; then
    # Some pauses end before the server's heartbeat grace, some after it.
    if ((RANDOM % 2)); then pick $((heartbeat_timeout_ms / 5)) $((heartbeat_timeout_ms * 3 / 5))
    else pick $((heartbeat_timeout_ms * 3 / 2)) $((heartbeat_timeout_ms * 5 / 2)); fi
    pause_ms=$picked
  fi
  pick 500 $((window_ms > 500 ? window_ms : 500))
  fault_at_ms=$picked
  ((i > 0)) || victim_kind=none fault_at_ms=$((timeout_s * 1000 + 1))

  now_ms
  started=$now
  start_flare_run "$out" "$work/job.toml" --workspace "$ws"
  local victim='' victim_text='' signal_at=0 cont_at=0 detections_before=0 resumed=0 hung=0
  outcome='' reason='' detected='' detect_ms=0 orphans='' corrupted=''
  signal_text="none (the run ended first)"
  while :; do
    now_ms
    if ((now - started > timeout_s * 1000)); then
      hung=1
      processes_naming "$ws"
      kill_all "$pid" "${found[@]}"
      wait "$watcher" || true
      break
    fi
    if ! running "$watcher"; then
      wait "$watcher" || true
      rc=$(< "$ws.rc")
      if [[ $victim == "$pid" && $signal == KILL ]] && ((!resumed)); then
        wait_for_exit "$ws" 10  # the killed server's sites and ranks leave with it
        if ((!can_resume)); then outcome=RESUME-UNAVAILABLE; break; fi
        resumed=1
        out="$ws.resume.out"
        start_flare_run "$out" --resume "$ws/run-1"
        continue
      fi
      # Killed before its first round was checkpointed (or before its run
      # folder existed): nothing to resume, so the operator starts the job
      # again.
      if ((resumed == 1)) && [[ $rc == 2 ]] &&
        grep -qE 'nothing to resume|found no such folder|job.toml' "$out"; then
        resumed=2
        out="$ws.restart.out"
        start_flare_run "$out" "$work/job.toml" --workspace "$ws"
        continue
      fi
      break
    fi
    if [[ -z $victim ]] && ((now - started >= fault_at_ms)); then
      case $victim_kind in
        server) found=("$pid") ;;
        supervisor) processes_of "$ws" flare-client ;;
        rank) processes_of "$ws" flare-worker ;;
      esac
      if ((${#found[@]})); then
        victim=${found[RANDOM % ${#found[@]}]}
        victim_text="$victim_kind $(describe_process "$victim")"
        detections_before=$(cat "$ws"/run-*/metrics.jsonl 2>/dev/null | grep -cE "$detection_kinds" || true)
        kill -"$signal" "$victim" 2>/dev/null || true
        now_ms
        signal_at=$now
        signal_text="SIG$signal at $(seconds $((signal_at - started)))"
        if [[ $signal == STOP ]]; then
          cont_at=$((signal_at + pause_ms))
          signal_text+=", SIGCONT after $(seconds "$pause_ms")"
        fi
      fi
    fi
    if ((cont_at && now >= cont_at)); then
      kill -CONT "$victim" 2>/dev/null || true
      cont_at=0
    fi
    look_for_detection
    sleep 0.1
  done
  now_ms
  took_ms=$((now - started))
  look_for_detection  # a line written just before flare-run exited
  victim_text=${victim_text:-$victim_kind}

  wait_for_exit "$ws" 5
  processes_naming "$ws"
  if ((${#found[@]})); then
    local pid_left
    for pid_left in "${found[@]}"; do orphans+="$(describe_process "$pid_left"); "; done
    kill_all "${found[@]}"
  fi
  local checked
  checked=$("$python" "$root/scripts/chaos/check_files.py" "$ws"/run-* 2>&1) ||
    corrupted=$(grep -v ' files checked, ' <<< "$checked" | sed 's/^corrupted: //' | paste -sd';' -)

  rounds_done=$(cat "$ws"/run-*/metrics.jsonl 2>/dev/null | grep -E '"kind": ?"global"' |
    grep -oE '"round": ?[0-9]+' | tr -dc '0-9\n' | sort -n | tail -1 || true)
  rounds_done=${rounds_done:-0}
  local failed_line
  failed_line=$(grep -m1 '^flare-run: the job failed: ' "$out" 2>/dev/null || true)
  if ((hung)); then
    outcome=HANG reason="still running after ${timeout_s} s: killed"
  elif [[ $outcome == RESUME-UNAVAILABLE ]]; then
    reason="server killed: resume not available (flare-run has no --resume)"
  elif [[ $rc == 0 && $rounds_done == "$rounds" ]]; then
    outcome=COMPLETED
  elif [[ $rc == 0 ]]; then
    outcome=UNCLEAR reason="exit 0 after $rounds_done of $rounds rounds"
  elif [[ $rc == 1 && -n $failed_line ]]; then
    outcome=FAILED reason=${failed_line#flare-run: the job failed: }
  else
    outcome=UNCLEAR reason="exit $rc without a 'the job failed: <reason>' line"
  fi
  victim_of_iteration=$victim_text
}

# Waits up to $2 s for every process naming $1 to leave.
wait_for_exit() {
  local deadline
  now_ms
  deadline=$((now + $2 * 1000))
  while processes_naming "$1"; ((${#found[@]})); do
    now_ms
    ((now < deadline)) || return 0
    sleep 0.1
  done
}

# --- the run ------------------------------------------------------------------

echo "chaos: seed $seed, $iterations iterations of $rounds rounds, $sites sites x 1 CPU rank" \
  "(replay one: --seed $seed --only I); resume $( ((can_resume)) && echo available || echo 'not available')"
window_ms=0  # the baseline (iteration 0) draws no fault
if [[ -n $window_s ]]; then
  window_ms=$((window_s * 1000))
else
  # Faults must fall within a run, however fast this machine runs one.
  run_iteration 0
  if [[ $outcome != COMPLETED || -n $orphans || -n $corrupted ]]; then
    echo "chaos: the fault-free run did not complete cleanly: outcome=$outcome" \
      "rounds=$rounds_done/$rounds ${reason:+reason=\"$reason\" }${orphans:+ORPHANS: $orphans }${corrupted:+CORRUPTED: $corrupted}" >&2
    exit 1
  fi
  window_ms=$took_ms
  echo "chaos: a fault-free run takes $(seconds "$window_ms") here: faults fall in 0.5 s .. that"
fi
declare -A outcomes=()
bad=0 orphaned=0 corrupting=0 longest_ms=0 longest_text='none'
first=${only:-1} last=${only:-$iterations}
for ((i = first; i <= last; i++)); do
  run_iteration "$i"
  line="iteration $i/$iterations: victim=$victim_of_iteration signal=$signal_text"
  line+=" outcome=$outcome rounds=$rounds_done/$rounds"
  if [[ -n $detected ]]; then
    line+=" detected=$detected after $(seconds "$detect_ms")"
    if ((detect_ms > longest_ms)); then
      longest_ms=$detect_ms longest_text="$(seconds "$detect_ms") ($detected, iteration $i)"
    fi
  fi
  [[ -n $reason ]] && line+=" reason=\"$reason\""
  [[ -n $orphans ]] && line+=" ORPHANS: ${orphans%; }"
  [[ -n $corrupted ]] && line+=" CORRUPTED: $corrupted"
  echo "$line"
  outcomes[$outcome]=$((${outcomes[$outcome]:-0} + 1))
  [[ -n $orphans ]] && orphaned=$((orphaned + 1))
  [[ -n $corrupted ]] && corrupting=$((corrupting + 1))
  if [[ $outcome == HANG || $outcome == UNCLEAR || -n $orphans || -n $corrupted ]]; then
    bad=$((bad + 1))
  fi
done

summary=''
for kind in COMPLETED FAILED RESUME-UNAVAILABLE HANG UNCLEAR; do
  summary+=" $kind ${outcomes[$kind]:-0},"
done
echo "chaos summary: $((last - first + 1)) iterations (seed $seed):${summary%,};" \
  "left processes $orphaned, corrupted files $corrupting; longest detection $longest_text;" \
  "$bad went wrong"
((bad == 0))
