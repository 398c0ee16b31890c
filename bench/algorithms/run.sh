#!/usr/bin/env bash
# NVFlare's cifar10-sim study, on this runtime: 8 sites x 1 rank, the
# training set split by Dirichlet(alpha) for each ALPHA, FedAvg vs FedProx vs
# FedAdam vs SCAFFOLD, on generated CIFAR-format data and on the real MNIST
# files converted to the same format (scripts/prepare-mnist.sh). Prints, per
# data set and alpha, each algorithm's final test accuracy, its best, and the
# first round whose global model reached TARGET (per data set). Every run's
# workspace is kept under OUT for its metrics.jsonl. Needs a built tree.
#   bench/algorithms/run.sh [ROUNDS=20] [ALPHAS="1.0 0.5 0.1"] [DATASETS="synthetic mnist"] [OUT=/tmp/flare-bench-algorithms]
# FLARE_MNIST names the folder of MNIST's .gz files (default ../shared/data/mnist-t10k);
# FLARE_BATCH / FLARE_LR the local SGD's batch size and learning rate (8, 0.005;
# momentum 0.9, one local epoch per round). FedAdam runs with eta 0.01 and tau
# 1e-3 (Reddi et al.'s range): Flower's defaults (eta 0.1, tau 1e-9) make steps
# of 0.1 per weight and diverge on this CNN in the first round.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
rounds="${1:-20}"
alphas="${2:-1.0 0.5 0.1}"
datasets="${3:-synthetic mnist}"
out="${4:-/tmp/flare-bench-algorithms}"
mnist_src="${FLARE_MNIST:-$root/../shared/data/mnist-t10k}"
batch="${FLARE_BATCH:-8}"
lr="${FLARE_LR:-0.005}"
mkdir -p "$out"

for dataset in $datasets; do
  data="$out/data-$dataset"
  if [[ ! -f "$data/flare-data.json" ]]; then
    case "$dataset" in
      synthetic) "$root/build/bin/flare-make-cifar" --out "$data" --train 10000 --test 2000 --seed 0 >/dev/null ;;
      mnist) "$root/scripts/prepare-mnist.sh" "$mnist_src" "$data" 2000 >/dev/null ;;
      *) echo "run.sh: unknown data set '$dataset' (synthetic, mnist)" >&2; exit 2 ;;
    esac
  fi
  for alpha in $alphas; do
    # name | [trainer.config] algorithm | [aggregator] table
    for algo in "fedavg|fedavg|plugin = \"fedavg\"" "fedprox|fedprox|plugin = \"fedavg\"" \
                "fedadam|fedavg|plugin = \"fedadam\"\n[aggregator.config]\neta = 0.01\ntau = 0.001" \
                "scaffold|scaffold|plugin = \"scaffold\""; do
      IFS='|' read -r name algorithm aggregator <<< "$algo"
      ws="$out/ws-$dataset-$alpha-$name"
      [[ -f "$ws/latest/metrics.jsonl" ]] && grep -q '"kind":"job"' "$ws/latest/metrics.jsonl" && continue
      echo "== $dataset alpha $alpha $name ($rounds rounds)" >&2
      printf '%b\n' "[job]
name = \"$dataset-$alpha-$name\"
num_rounds = $rounds
min_clients = 8
seed = 0
workspace = \"$ws\"
[clients]
count = 8
devices = 1
[data]
dir = \"$data\"
split = \"dirichlet\"
alpha = $alpha
[trainer]
plugin = \"cifar10\"
[trainer.config]
batch_size = $batch
lr = $lr
momentum = 0.9
algorithm = \"$algorithm\"
fedprox_mu = 0.01
[aggregator]
$aggregator
[server]
key_metric = \"val_acc\"" > "$ws.toml"
      "$root/build/bin/flare-run" "$ws.toml" > "$ws.out" 2>&1 ||
        { echo "run.sh: $dataset alpha $alpha $name failed: see $ws.out" >&2; exit 1; }
    done
  done
done

/usr/bin/python3 - "$out" "$datasets" "$alphas" <<'PY'
import json, sys
out, datasets, alphas = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
targets = {"synthetic": 0.5, "mnist": 0.9}
print(f"{'data':10}{'alpha':>6}  {'algorithm':10}{'final test_acc':>15}{'best':>8}{'round to target':>17}")
for d in datasets:
    for a in alphas:
        for name in ("fedavg", "fedprox", "fedadam", "scaffold"):
            lines = [json.loads(l) for l in open(f"{out}/ws-{d}-{a}-{name}/latest/metrics.jsonl") if l.strip()]
            glob = [l for l in lines if l["kind"] == "global" and "test_acc" in l]
            accs = [(l["round"], l["test_acc"]) for l in glob]
            reached = next((r for r, acc in accs if acc >= targets[d]), None)
            print(f"{d:10}{a:>6}  {name:10}{accs[-1][1]:15.4f}{max(x for _, x in accs):8.4f}"
                  f"{(str(reached) if reached is not None else '-') + ' (' + str(targets[d]) + ')':>17}")
PY
