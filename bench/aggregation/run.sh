#!/usr/bin/env bash
# FedAvg of CLIENTS x PARAMS float32 updates through the C ABI, whole and
# streamed in 4 MiB chunks (update after update, and interleaved across the
# clients), against memcpy on all cores and on one core
# (flare-bench-aggregation, interleaved, median and spread of REPEATS runs),
# then the NumPy variants of agg_numpy.py with the same sizes, in the same
# run. CONFIG is fedavg's JSON config (e.g. '{"sum": "compensated"}'); fedavg
# with {"fold": "at_finalize"} (updates kept, one pass at finalize, also
# timed alone) runs beside it. Needs a built tree and Debian's python3-numpy.
#   bench/aggregation/run.sh [BUILD_DIR=build] [CLIENTS=8] [PARAMS=25000000] [REPEATS=7] [CONFIG={}]
# FLARE_AGG_NUMPY names agg_numpy.py (default ../shared/bench/agg_numpy.py
# beside the repository: it is not part of it).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${1:-$root/build}"
clients="${2:-8}"
params="${3:-25000000}"
repeats="${4:-7}"
config="${5:-{\}}"
numpy_bench="${FLARE_AGG_NUMPY:-$root/../shared/bench/agg_numpy.py}"
for need in "$build/bin/flare-bench-aggregation" "$build/plugins/libflare_fedavg.so"; do
  [[ -e "$need" ]] || { echo "run.sh: $need is missing: build the tree first" >&2; exit 2; }
done
[[ -f "$numpy_bench" ]] || { echo "run.sh: $numpy_bench not found (set FLARE_AGG_NUMPY)" >&2; exit 2; }

echo "== flare (bench/aggregation/agg_bench.cpp)"
"$build/bin/flare-bench-aggregation" --plugin "$build/plugins/libflare_fedavg.so" \
  --config "$config" --plugin "$build/plugins/libflare_fedavg.so" --config '{"fold": "at_finalize"}' \
  --clients "$clients" --params "$params" --repeats "$repeats"
echo "== numpy ($numpy_bench)"
/usr/bin/python3 "$numpy_bench" --clients "$clients" --params "$params" | tee "${TMPDIR:-/tmp}/agg_numpy.$$.json" |
  /usr/bin/python3 "$root/bench/aggregation/numpy_summary.py"
echo "  (full JSON: ${TMPDIR:-/tmp}/agg_numpy.$$.json)"
