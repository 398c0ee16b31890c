#!/usr/bin/env bash
# The seed job (jobs/cifar10.toml: 2 sites x 2 ranks, FedAvg) once per
# server.wire_dtype on the same generated CIFAR-format data and seeds: each
# setting's final test accuracy and loss next to the uncompressed run's, and
# the seconds per round. Needs a built tree (scripts/build.sh).
#   bench/wire_dtype/run.sh [TRAIN_IMAGES=10000] [ROUNDS=5] [DTYPES="float32 bfloat16 float16 int8"]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
train="${1:-10000}"
rounds="${2:-5}"
dtypes="${3:-float32 bfloat16 float16 int8}"
work="$(mktemp -d /tmp/flare-bench-wire.XXXXXX)"
trap 'rm -rf "$work"' EXIT

"$root/build/bin/flare-make-cifar" --out "$work/data" --train "$train" --test 2000 --seed 0 >/dev/null
for dtype in $dtypes; do
  echo "== wire_dtype $dtype: $rounds rounds, $train generated training images" >&2
  "$root/build/bin/flare-run" "$root/jobs/cifar10.toml" --num_rounds "$rounds" \
    --workspace "$work/ws-$dtype" --set data.dir="$work/data" \
    --set server.wire_dtype="$dtype" > "$work/$dtype.out"
done
/usr/bin/python3 - "$work" $dtypes <<'PY'
import json, statistics, sys
work, dtypes = sys.argv[1], sys.argv[2:]
rows = {}
for d in dtypes:
    lines = [json.loads(l) for l in open(f"{work}/ws-{d}/latest/metrics.jsonl") if l.strip()]
    glob = [l for l in lines if l["kind"] == "global"]
    final = glob[-1]
    rows[d] = (final["test_acc"], final["test_loss"],
               statistics.median(l["round_seconds"] for l in glob if l["round"] > 0))
base = rows[dtypes[0]]
print(f"{'wire_dtype':12}{'test_acc':>10}{'test_loss':>11}{'acc - ' + dtypes[0]:>18}{'s/round':>9}")
for d, (acc, loss, s) in rows.items():
    print(f"{d:12}{acc:10.4f}{loss:11.4f}{acc - base[0]:+18.4f}{s:9.2f}")
PY
