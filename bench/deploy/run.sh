#!/usr/bin/env bash
# Per-round time of the same tiny job (the counter trainer: one float, 2
# sites, 1 CPU rank each) run by flare-run on one machine and by the
# long-running deployment (flare-server + a flare-client daemon per site,
# submitted with flare-admin), both over mutual TLS on loopback, alternating,
# REPEATS times each. Prints each run's median ms/round (the server's
# round_seconds, rounds 2..R), each job's wall time (flare-run's whole run;
# flare-admin submit --wait), and the ratio deployed / flare-run per round
# with its spread.
#   bench/deploy/run.sh [BUILD_DIR] [ROUNDS] [REPEATS]
set -euo pipefail
build=$(realpath "${1:-build}")
rounds=${2:-200}
repeats=${3:-3}
bin=$build/bin
trainer=$build/tests/e2e/fixtures/libflare_c_counter_trainer.so
[[ -x $bin/flare-server && -f $trainer ]] ||
  { echo "$0: build $build first (flare-server, and the tests' counter trainer)" >&2; exit 2; }
work=$(mktemp -d /tmp/flare-bench-deploy.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$work/project.toml" <<TOML
[project]
name = "bench"
[server]
name = "127.0.0.1"
port = $port
[sites.site-1]
[sites.site-2]
[admins."bench@example.org"]
role = "project_admin"
TOML
"$bin/flare-provision" "$work/project.toml" --output "$work/out" > /dev/null
kits=$work/out/bench
"$bin/flare-server" --startup "$kits/127.0.0.1/startup" --listen 127.0.0.1 \
  --job-ports "$((port + 1))-$((port + 20))" > "$work/server.log" 2>&1 &
pids+=($!)
for site in site-1 site-2; do
  "$bin/flare-client" --startup "$kits/$site/startup" --data-dir "$work" > "$work/$site.log" 2>&1 &
  pids+=($!)
done

job() {  # job FILE WORKSPACE
  cat > "$1" <<TOML
[job]
name = "tiny"
num_rounds = $rounds
workspace = "$2"
[clients]
count = 2
devices = 1
accelerator = "cpu"
[data]
dir = "$work"
[trainer]
path = "$trainer"
[aggregator]
plugin = "fedavg"
[server]
save_every = 1000000
TOML
}

ms_per_round() {  # the median round_seconds of a metrics.jsonl, in ms
  /usr/bin/python3 - "$1" <<'PY'
import json, statistics, sys
r = [l["round_seconds"] for l in map(json.loads, open(sys.argv[1])) if l.get("kind") == "global"
     and l.get("round", 0) >= 2 and "round_seconds" in l]
print(f"{statistics.median(r) * 1000:.2f}")
PY
}

admin=("$bin/flare-admin" --startup "$kits/bench@example.org/startup")
now_ms() { date +%s%3N; }
echo "tiny model, 2 sites, $rounds rounds: median ms/round (rounds 2..$rounds) and the job's wall time"
printf '%-4s %14s %14s %8s %16s %16s\n' run "flare-run ms" "deployed ms" ratio "flare-run wall s" "deployed wall s"
ratios=()
for i in $(seq 1 "$repeats"); do
  job "$work/local-$i.toml" "$work/local-$i"
  began=$(now_ms)
  "$bin/flare-run" "$work/local-$i.toml" > "$work/local-$i.log" 2>&1
  local_wall=$(( $(now_ms) - began ))
  local_ms=$(ms_per_round "$work/local-$i/run-1/metrics.jsonl")
  job "$work/deployed-$i.toml" "$work/unused"
  began=$(now_ms)
  out=$("${admin[@]}" submit "$work/deployed-$i.toml" --wait)
  deployed_wall=$(( $(now_ms) - began ))
  id=$(grep -o 'job-[0-9]*' <<< "$out" | head -1)
  deployed_ms=$(ms_per_round "$kits/127.0.0.1/workspace/jobs/$id/metrics.jsonl")
  ratio=$(python3 -c "print(f'{$deployed_ms / $local_ms:.3f}')")
  ratios+=("$ratio")
  printf '%-4s %14s %14s %8s %16s %16s\n' "$i" "$local_ms" "$deployed_ms" "$ratio" \
    "$(python3 -c "print(f'{$local_wall / 1000:.2f}')")" "$(python3 -c "print(f'{$deployed_wall / 1000:.2f}')")"
done
python3 -c "
import statistics, sys
r = [float(x) for x in sys.argv[1:]]
print(f'ratio deployed / flare-run (ms per round): median {statistics.median(r):.3f}, range {min(r):.3f}-{max(r):.3f}')
" "${ratios[@]}"
