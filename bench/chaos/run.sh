#!/usr/bin/env bash
# The long chaos run: scripts/chaos.sh with ITERATIONS iterations of the same
# job as the test's short run (3 sites x 1 CPU rank, 5 rounds, generated data),
# each iteration bounded at 180 s. Prints its lines and summary (the figures
# for bench/RESULTS.md: outcomes by kind, longest detection time) and exits
# as chaos.sh does.
#   bench/chaos/run.sh [ITERATIONS=40] [SEED=1] [BUILD_DIR=build]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
iterations=${1:-40}
seed=${2:-1}
build=$(realpath "${3:-$root/build}")
exec bash "$root/scripts/chaos.sh" --iterations "$iterations" --seed "$seed" --timeout 180 \
  --bin "$build/bin"
