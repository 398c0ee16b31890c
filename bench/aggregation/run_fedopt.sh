#!/usr/bin/env bash
# fedavg, the FedOpt family (fedavgm, fedadagrad, fedadam, fedyogi), scaffold
# and dp_fedavg (whole updates only; clipping_norm 1, noise_multiplier 1) on
# CLIENTS x PARAMS float32 updates through the C ABI, whole and streamed in
# 4 MiB chunks, every plugin's rounds and memcpy on all cores and one core
# taking turns in the same run (flare-bench-aggregation, median and spread of
# REPEATS runs), then Flower's NumPy FedAvgM / FedAdagrad / FedAdam / FedYogi
# and NVFlare's SCAFFOLD step (fedopt_numpy.py) with the same sizes, right
# after. Half of every model's parameters are named as SCAFFOLD's control
# variates (--variates scaffold: the others see plain tensors). Default configs
# (fedavgm: momentum 0.9); then fedavg and the FedOpt family again with
# {"fold": "at_finalize"} (updates kept, the mean and the server step in one
# pass at finalize). Needs a built tree and Debian's python3-numpy.
#   bench/aggregation/run_fedopt.sh [BUILD_DIR=build] [CLIENTS=8] [PARAMS=25000000] [REPEATS=7]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${1:-$root/build}"
clients="${2:-8}"
params="${3:-25000000}"
repeats="${4:-7}"
args=()
for name in fedavg fedavgm fedadagrad fedadam fedyogi scaffold; do
  so="$build/plugins/libflare_$name.so"
  [[ -e "$so" ]] || { echo "run_fedopt.sh: $so is missing: build the tree first" >&2; exit 2; }
  args+=(--plugin "$so")
done
args+=(--plugin "$build/plugins/libflare_dp_fedavg.so"
       --config '{"clipping_norm": 1, "noise_multiplier": 1, "seed": 1}')
for name in fedavg fedavgm fedadagrad fedadam fedyogi; do
  args+=(--plugin "$build/plugins/libflare_$name.so" --config '{"fold": "at_finalize"}')
done
[[ -e "$build/bin/flare-bench-aggregation" ]] ||
  { echo "run_fedopt.sh: $build/bin/flare-bench-aggregation is missing: build the tree first" >&2; exit 2; }

echo "== flare (bench/aggregation/agg_bench.cpp)"
"$build/bin/flare-bench-aggregation" "${args[@]}" --clients "$clients" --params "$params" \
  --repeats "$repeats" --variates scaffold
echo "== numpy, as Flower computes (bench/aggregation/fedopt_numpy.py)"
/usr/bin/python3 "$root/bench/aggregation/fedopt_numpy.py" --clients "$clients" --params "$params"
