#!/usr/bin/env bash
# The robust aggregators (median, trimmed_mean, krum, multi_krum, bulyan) of
# CLIENTS x PARAMS float32 updates through the C ABI (flare-bench-aggregation:
# whole round and finalize alone, against memcpy in the same run), then the
# NumPy versions (robust_numpy.py) with the same sizes, f = 1 and beta = 0.2,
# in the same run. Needs a built tree and Debian's python3-numpy.
#   bench/aggregation/robust_run.sh [BUILD_DIR=build] [CLIENTS=8] [PARAMS=25000000] [REPEATS=5]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${1:-$root/build}"
clients="${2:-8}"
params="${3:-25000000}"
repeats="${4:-5}"
[[ -x "$build/bin/flare-bench-aggregation" ]] ||
  { echo "robust_run.sh: $build/bin/flare-bench-aggregation is missing: build the tree first" >&2; exit 2; }

for rule in 'median {}' 'trimmed_mean {"beta": 0.2}' 'krum {"f": 1}' 'multi_krum {"f": 1}' \
            'bulyan {"f": 1}' 'fedavg {}'; do
  name="${rule%% *}" config="${rule#* }"
  echo "== flare $name $config"
  "$build/bin/flare-bench-aggregation" --plugin "$build/plugins/libflare_$name.so" \
    --clients "$clients" --params "$params" --repeats "$repeats" --config "$config" | head -n -1
done
echo "== numpy (bench/aggregation/robust_numpy.py)"
/usr/bin/python3 "$root/bench/aggregation/robust_numpy.py" --clients "$clients" --params "$params" \
  --f 1 --beta 0.2 | head -n -1
