#!/usr/bin/env bash
# build.sh BUILD_DIR TORCH_CMAKE_PREFIX LOG_DIR [cmake args...]: configures and
# builds what the GPU check runs, against the given LibTorch and, for every other
# dependency, only .gpu-check/root (collect.sh). Used by run.sh on the GPU
# machine and by clean-root.sh here.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="$1" torch_prefix="$2" logs="$3"
shift 3
deps="$root/.gpu-check/root"
# Symbolic links may not have survived the trip (collect.sh recorded them).
while IFS=$'\t' read -r link target; do ln -sfn "$target" "$deps/$link"; done \
  < "$root/.gpu-check/symlinks.tsv"
export LD_LIBRARY_PATH="$deps/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
mkdir -p "$logs"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$torch_prefix;$deps/usr" -DFLARE_BUILD_BENCH=OFF \
  -DFLARE_USE_TCMALLOC=OFF "$@" > "$logs/configure.log" 2>&1 ||
  { tail -40 "$logs/configure.log"; exit 1; }
grep -E "^-- flare:" "$logs/configure.log" || true
cmake --build "$build" -j "$(nproc)" --target flare-run flare-client flare-worker \
  flare_plugin_cifar10 flare_plugin_fedavg flare-make-cifar test_torch_sdk_data_parallel \
  > "$logs/build.log" 2>&1 || { grep -B2 -A12 -m3 "error" "$logs/build.log"; exit 1; }
