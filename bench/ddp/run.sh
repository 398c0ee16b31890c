#!/usr/bin/env bash
# DDP benchmarks, every baseline in the same run (needs a built tree with
# flare-bench-ddp and flare-make-cifar, and Debian's python3-torch):
#   1. cifar10 trainer images/s, 2 ranks (2 processes, Gloo on loopback) vs 1,
#      1 intra-op thread per rank;
#   2. the same trainer vs ../shared/bench/torch_reference.py, batch 4,
#      devices 1 and 2, 1 thread per rank, 1 client, 2 rounds;
#   3. communication per step for LitNet and a 25M-parameter MLP, 2 ranks.
#   bench/ddp/run.sh [BUILD_DIR=build] [TRAIN_IMAGES=10000]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${1:-$root/build}"
train="${2:-10000}"
bin="$build/bin/flare-bench-ddp"
plugin="$build/plugins/libflare_cifar10.so"
reference="${FLARE_TORCH_REFERENCE:-$root/../shared/bench/torch_reference.py}"
work="$(mktemp -d /tmp/flare-bench-ddp.XXXXXX)"
trap 'rm -rf "$work"' EXIT
"$build/bin/flare-make-cifar" --out "$work/data" --train "$train" --test 2000 --seed 0 >/dev/null

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# ranks WORLD ARGS...: runs WORLD processes, prints rank 0's output.
ranks() {
  local world=$1; shift
  local p; p=$(port)
  for ((r = 1; r < world; ++r)); do "$bin" --rank "$r" --world "$world" --port "$p" "$@" >/dev/null & done
  "$bin" --rank 0 --world "$world" --port "$p" "$@"
  wait
}
# The last round's images/s (round 0 also loads the data).
flare_ips() { ranks "$1" --mode trainer --plugin "$plugin" --data "$work/data" --max_train "$train" --rounds 2 | tail -n1 | awk '{print $(NF-1)}'; }
reference_ips() {
  /usr/bin/python3 "$reference" --data "$work/data" --n_clients 1 --devices "$1" --threads 1 \
    --num_rounds 2 --max_train "$train" --batch_size 4 --lr 0.001 --momentum 0.9 \
    --local_epochs 1 --json_out "$work/ref$1.json" >/dev/null 2>&1
  python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["images_per_s_per_round"][-1]))' "$work/ref$1.json"
}

f1=$(flare_ips 1); f2=$(flare_ips 2)
r1=$(reference_ips 1); r2=$(reference_ips 2)
echo "cifar10 trainer, batch 4, 1 thread per rank, images/s (last of 2 rounds):"
printf "  %-9s %10s %12s %7s\n" devices flare torch_ref ratio
printf "  %-9s %10s %12s %7.2f\n" 1 "$f1" "$r1" "$(echo "$f1 / $r1" | bc -l)"
printf "  %-9s %10s %12s %7.2f\n" 2 "$f2" "$r2" "$(echo "$f2 / $r2" | bc -l)"
printf "  scaling devices 2 / 1: flare %.2fx, reference %.2fx\n" \
  "$(echo "$f2 / $f1" | bc -l)" "$(echo "$r2 / $r1" | bc -l)"
echo "communication per step (2 ranks, Gloo on loopback):"
ranks 2 --mode comm --model litnet --steps 300
ranks 2 --mode comm --model mlp25m --steps 20
