#!/usr/bin/env bash
# DDP benchmarks, every baseline in the same run (needs a built tree with
# flare-bench-ddp and flare-make-cifar, and Debian's python3-torch):
#   1. cifar10 trainer images/s, 2 ranks (2 processes on one host) vs 1, 1
#      intra-op thread per rank; all-reduce through shared memory (the default)
#      and through Gloo (the mesh and ProcessGroupGloo, as before it); and what
#      two cores give two independent 1-rank processes (no communication);
#   2. the same trainer vs ../shared/bench/torch_reference.py, batch 4,
#      devices 1 and 2, 1 thread per rank, 1 client;
#   3. communication per step for LitNet and a 25M-parameter MLP, 2 ranks,
#      shared memory and Gloo.
# Each figure is the median of REPEATS runs, interleaved, each run the median
# of its rounds after the first: this VM's speed drifts by 10-15% within
# seconds, so single runs cannot carry a ratio.
#   bench/ddp/run.sh [BUILD_DIR=build] [TRAIN_IMAGES=10000] [REPEATS=3]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${1:-$root/build}"
train="${2:-10000}"
repeats="${3:-3}"
rounds=5
bin="$build/bin/flare-bench-ddp"
plugin="$build/plugins/libflare_cifar10.so"
reference="${FLARE_TORCH_REFERENCE:-$root/../shared/bench/torch_reference.py}"
work="$(mktemp -d /tmp/flare-bench-ddp.XXXXXX)"
trap 'rm -rf "$work"' EXIT
"$build/bin/flare-make-cifar" --out "$work/data" --train "$train" --test 2000 --seed 0 >/dev/null

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
ratio() { echo "$1 / $2" | bc -l; }
# ranks WORLD ARGS...: runs WORLD processes, prints rank 0's output.
ranks() {
  local world=$1; shift
  local p; p=$(port)
  for ((r = 1; r < world; ++r)); do "$bin" --rank "$r" --world "$world" --port "$p" "$@" >/dev/null & done
  "$bin" --rank 0 --world "$world" --port "$p" "$@"
  wait
}
trainer() { echo --mode trainer --plugin "$plugin" --data "$work/data" --max_train "$train" --rounds "$rounds"; }
# flare_ips WORLD TRANSPORT: the run's median images/s.
flare_ips() { ranks "$1" $(trainer) --transport "$2" | tail -n1 | awk '{print $(NF-1)}'; }
# Two 1-rank processes at once, no communication: their images/s added.
independent_ips() {
  "$bin" --rank 0 --world 1 $(trainer) | tail -n1 | awk '{print $(NF-1)}' >"$work/other" &
  local mine; mine=$("$bin" --rank 0 --world 1 $(trainer) | tail -n1 | awk '{print $(NF-1)}')
  wait
  echo $((mine + $(cat "$work/other")))
}
reference_ips() {
  /usr/bin/python3 "$reference" --data "$work/data" --n_clients 1 --devices "$1" --threads 1 \
    --num_rounds "$rounds" --max_train "$train" --batch_size 4 --lr 0.001 --momentum 0.9 \
    --local_epochs 1 --json_out "$work/ref$1.json" >/dev/null 2>&1
  python3 -c 'import json,sys,statistics as s; r=json.load(open(sys.argv[1]))["images_per_s_per_round"][1:]; print(round(s.median(r)))' "$work/ref$1.json"
}

for ((i = 0; i < repeats; ++i)); do
  flare_ips 1 shm >>"$work/f1"
  flare_ips 2 shm >>"$work/f2"
  flare_ips 2 gloo >>"$work/f2g"
  independent_ips >>"$work/ind"
  reference_ips 1 >>"$work/r1"
  reference_ips 2 >>"$work/r2"
done
f1=$(median <"$work/f1"); f2=$(median <"$work/f2")
f2g=$(median <"$work/f2g"); ind=$(median <"$work/ind")
r1=$(median <"$work/r1"); r2=$(median <"$work/r2")
echo "cifar10 trainer, batch 4, 1 thread per rank, images/s (median of $repeats runs):"
printf "  %-26s %10s %12s %7s\n" devices flare torch_ref ratio
printf "  %-26s %10s %12s %7.2f\n" 1 "$f1" "$r1" "$(ratio "$f1" "$r1")"
printf "  %-26s %10s %12s %7.2f\n" "2 (shared memory)" "$f2" "$r2" "$(ratio "$f2" "$r2")"
printf "  %-26s %10s\n" "2 (Gloo)" "$f2g"
printf "  %-26s %10s\n" "2 x 1, independent" "$ind"
printf "  scaling devices 2 / 1: flare %.2fx (Gloo %.2fx), reference %.2fx; two independent processes %.2fx\n" \
  "$(ratio "$f2" "$f1")" "$(ratio "$f2g" "$f1")" "$(ratio "$r2" "$r1")" "$(ratio "$ind" "$f1")"
echo "  runs (1 | 2 shm | 2 Gloo | independent | ref 1 | ref 2):"
paste "$work/f1" "$work/f2" "$work/f2g" "$work/ind" "$work/r1" "$work/r2" | sed 's/^/    /'
echo "communication per step (2 ranks, one host):"
for transport in shm gloo; do
  echo "  $transport:"
  ranks 2 --mode comm --model litnet --steps 300 --transport "$transport" | sed 's/^/    /'
  ranks 2 --mode comm --model mlp25m --steps 20 --transport "$transport" | sed 's/^/    /'
done
