#!/usr/bin/env bash
# The GPU check in two steps (details in scripts/gpu-check/):
#   scripts/gpu-check.sh collect      # here: Debian packages the build needs -> .gpu-check/
#   scripts/gpu-check.sh run          # on the GPU machine, with .gpu-check/ carried along
#   scripts/gpu-check.sh clean-root   # here: a CPU build from .gpu-check/ alone in a fresh Debian root
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/gpu-check"
case "${1:-}" in
  collect) exec "$here/collect.sh" ;;
  run) exec "$here/run.sh" ;;
  clean-root) exec "$here/clean-root.sh" ;;
  *) echo "usage: scripts/gpu-check.sh collect | run | clean-root" >&2; exit 2 ;;
esac
