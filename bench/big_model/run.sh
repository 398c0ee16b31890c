#!/usr/bin/env bash
# Big models through the runtime: server and total peak memory, seconds and
# GB/s per round, for a plain-C trainer with PARAMS float32 parameters, SITES
# sites x 1 rank, FedAvg, 2 rounds (see big_model_bench.py). Needs a built tree
# (scripts/build.sh; the trainer is bench/big_model's target). More options:
# bench/big_model/big_model_bench.py --help.
#   bench/big_model/run.sh [PARAMS=125000000] [SITES=4] [REPEATS=3] [extra options...]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
params="${1:-125000000}"
sites="${2:-4}"
repeats="${3:-3}"
shift $(( $# < 3 ? $# : 3 ))
exec /usr/bin/python3 "$here/big_model_bench.py" --params "$params" --sites "$sites" \
  --repeats "$repeats" "$@"
