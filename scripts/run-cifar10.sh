#!/usr/bin/env bash
# The first command: install what is missing, build, prepare CIFAR-10 (or
# generated data when it cannot be downloaded), run the seed job.
# Extra arguments go to flare-run (e.g. --num_rounds 2).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"
FLARE_MAKE_CIFAR="$root/build/bin/flare-make-cifar" "$root/scripts/prepare-data.sh" "$root/data/cifar10"
exec "$root/build/bin/flare-run" "$root/jobs/cifar10.toml" "$@"
