#!/usr/bin/env bash
# What tracking costs the seed job (jobs/cifar10.toml: 2 sites x 2 ranks,
# LitNet, FedAvg) on generated CIFAR-format data: runs with the whole
# feature off (no per-step figures: trainer.config.log_every_n_steps = 0, no
# --use_tracking) and on (the default log_every_n_steps = 50 sent to the
# server, and --use_tracking), in pairs whose order alternates (off on, on
# off, ...: the second run of a pair was slower here whatever its setting),
# so drift on a shared machine hits both alike; per setting the median training images/s
# of each run's rounds, then over the repeats the median, min and max, and
# on/off: of the medians, and the median of each pair's ratio.
# Also the size of the event files a tracked run leaves, and its train_step
# lines (log_every_n_steps as in the job: the SDK's default 50).
# Needs a built tree (scripts/build.sh).
#   bench/tracking/run.sh [TRAIN_IMAGES=10000] [ROUNDS=3] [REPEATS=5]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
train="${1:-10000}"
rounds="${2:-3}"
repeats="${3:-5}"
work="$(mktemp -d /tmp/flare-bench-tracking.XXXXXX)"
trap 'rm -rf "$work"' EXIT

"$root/build/bin/flare-make-cifar" --out "$work/data" --train "$train" --test 2000 --seed 0 >/dev/null
for i in $(seq 1 "$repeats"); do
  order="off on"
  (( i % 2 == 0 )) && order="on off"
  for setting in $order; do
    echo "== repeat $i, tracking $setting: $rounds rounds, $train generated training images" >&2
    flag=(--set trainer.config.log_every_n_steps=0)
    [[ $setting == on ]] && flag=(--use_tracking)
    "$root/build/bin/flare-run" "$root/jobs/cifar10.toml" --num_rounds "$rounds" \
      --workspace "$work/ws-$setting-$i" --set data.dir="$work/data" "${flag[@]}" > "$work/$setting-$i.out"
  done
done
/usr/bin/python3 - "$work" "$repeats" <<'PY'
import glob, json, os, statistics, sys
work, repeats = sys.argv[1], int(sys.argv[2])
def run_figures(ws):
    lines = [json.loads(l) for l in open(f"{ws}/latest/metrics.jsonl") if l.strip()]
    glob_lines = [l for l in lines if l["kind"] == "global" and l["round"] > 0]
    return statistics.median(l["images_per_s"] for l in glob_lines), lines
ips = {"off": [], "on": []}
for i in range(1, repeats + 1):
    for s in ("off", "on"):
        ips[s].append(run_figures(f"{work}/ws-{s}-{i}")[0])
print(f"{'tracking':10}{'images/s median':>17}{'min':>9}{'max':>9}   runs (median of rounds each)")
for s in ("off", "on"):
    v = ips[s]
    print(f"{s:10}{statistics.median(v):17.0f}{min(v):9.0f}{max(v):9.0f}   " + " ".join(f"{x:.0f}" for x in v))
pairs = [on / off for on, off in zip(ips["on"], ips["off"])]
print(f"on / off: {statistics.median(ips['on']) / statistics.median(ips['off']):.3f} (medians); "
      f"pairs: median {statistics.median(pairs):.3f}, min {min(pairs):.3f}, max {max(pairs):.3f}")
_, lines = run_figures(f"{work}/ws-on-1")
steps = [l for l in lines if l["kind"] == "train_step"]
files = glob.glob(f"{work}/ws-on-1/latest/tensorboard/*/events.out.tfevents.*")
size = sum(os.path.getsize(f) for f in files)
print(f"tracked run: {len(files)} event files, {size} bytes in all; {len(steps)} train_step lines")
for l in steps[:2] + steps[-1:]:
    print("  " + json.dumps(l))
PY
