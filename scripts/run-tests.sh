#!/usr/bin/env bash
# The second command: install what is missing, build, run every test (ctest).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"
export FLARE_OFFLINE=1  # tests never download anything
ctest --test-dir "$root/build" --output-on-failure -j 2 "$@"
