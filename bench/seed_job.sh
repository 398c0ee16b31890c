#!/usr/bin/env bash
# The seed job (2 sites x 2 ranks, LitNet, batch 4, FedAvg) on generated
# CIFAR-format data, flare-run against the plain-PyTorch reference
# (../shared/bench/torch_reference.py) with the same settings, same run.
# Prints both sets of figures and their ratios. Needs a built tree (scripts/build.sh)
# and Debian's python3-torch for the reference.
#   bench/seed_job.sh [TRAIN_IMAGES=10000] [ROUNDS=5]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
train="${1:-10000}"
rounds="${2:-5}"
reference="${FLARE_TORCH_REFERENCE:-$root/../shared/bench/torch_reference.py}"
work="$(mktemp -d /tmp/flare-bench-seed.XXXXXX)"
trap 'rm -rf "$work"' EXIT

"$root/build/bin/flare-make-cifar" --out "$work/data" --train "$train" --test 2000 --seed 0 >/dev/null

echo "== flare-run: 2 sites x 2 ranks, $rounds rounds, $train training images" >&2
"$root/build/bin/flare-run" "$root/jobs/cifar10.toml" --num_rounds "$rounds" \
  --workspace "$work/ws" --set data.dir="$work/data" > "$work/flare.out"
tail -n $((rounds + 5)) "$work/flare.out" >&2

echo "== torch_reference.py: same settings (clients train concurrently, 1 thread per rank)" >&2
/usr/bin/python3 "$reference" --data "$work/data" --n_clients 2 --devices 2 \
  --num_rounds "$rounds" --batch_size 4 --lr 0.001 --momentum 0.9 --local_epochs 1 \
  --threads 1 --concurrent_clients 1 --json_out "$work/reference.json" > /dev/null

python3 - "$work/ws/latest/metrics.jsonl" "$work/reference.json" <<'PY'
import json, statistics, sys
flare = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
glob = [l for l in flare if l["kind"] == "global" and l["round"] > 0]
ref = json.load(open(sys.argv[2]))
f_ips = statistics.median(l["images_per_s"] for l in glob)
f_wall = statistics.median(l["round_seconds"] for l in glob)
r_ips = statistics.median(ref["images_per_s_per_round"])
r_wall = statistics.median(ref["wall_s_per_round"])
print(f"{'':24}{'flare-run':>12}{'torch_reference':>18}{'ratio':>8}")
print(f"{'train images/s (median)':24}{f_ips:12.0f}{r_ips:18.0f}{f_ips / r_ips:8.2f}")
print(f"{'wall s/round (median)':24}{f_wall:12.2f}{r_wall:18.2f}{r_wall / f_wall:8.2f}")
print(f"{'final test accuracy':24}{glob[-1]['test_acc']:12.4f}{ref['final_test_acc']:18.4f}")
PY
