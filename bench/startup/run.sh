#!/usr/bin/env bash
# Start-up breakdown and the seed job's whole run against the plain-PyTorch
# reference (../shared/bench/torch_reference.py), same run, interleaved (see
# startup_bench.py). Needs a built tree (scripts/build.sh: flare-run, the
# cifar10 plugin, flare-make-cifar, the C trainer fixture) and Debian's
# python3-torch for the reference. BASELINE_BUILD: another build (e.g. of an
# earlier commit), measured interleaved with build/ and shown beside it.
#   bench/startup/run.sh [REPEATS=5] [TRAIN_IMAGES=10000] [ROUNDS=4] [BASELINE_BUILD]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec /usr/bin/python3 "$here/startup_bench.py" --repeats "${1:-5}" --train "${2:-10000}" \
  --rounds "${3:-4}" ${4:+--baseline "$4"}
