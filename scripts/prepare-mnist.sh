#!/usr/bin/env bash
# Converts MNIST's idx files (the .gz files as published, e.g. the t10k pair in
# ../shared/data/mnist-t10k beside the repository) into a CIFAR-10-format set
# in OUT (default data/mnist under the repository root), so the cifar10 trainer
# runs on real data: each 28x28 grey image centred in 32x32 RGB; the last TEST
# images (default 2000) are the test set. Provenance (the files' SHA-256) goes
# to OUT/flare-data.json, and every run names the data it trained on.
#   scripts/prepare-mnist.sh [SRC=../shared/data/mnist-t10k] [OUT=data/mnist] [TEST=2000]
# Uses flare-make-cifar ($FLARE_MAKE_CIFAR, else build/bin/flare-make-cifar, else PATH).
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="${1:-$repo_root/../shared/data/mnist-t10k}"
out="${2:-$repo_root/data/mnist}"
test_images="${3:-2000}"
make_cifar="${FLARE_MAKE_CIFAR:-$repo_root/build/bin/flare-make-cifar}"
[[ -x "$make_cifar" ]] || make_cifar="$(command -v flare-make-cifar || true)"
[[ -n "$make_cifar" ]] || { echo "prepare-mnist: flare-make-cifar not found: build the tree first" >&2; exit 2; }

images="$(ls "$src"/*images-idx3-ubyte* 2>/dev/null | head -1 || true)"
labels="$(ls "$src"/*labels-idx1-ubyte* 2>/dev/null | head -1 || true)"
[[ -n "$images" && -n "$labels" ]] ||
  { echo "prepare-mnist: no *images-idx3-ubyte[.gz] and *labels-idx1-ubyte[.gz] pair in $src" >&2; exit 2; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
for f in "$images" "$labels"; do
  name="$(basename "$f" .gz)"
  if [[ "$f" == *.gz ]]; then gunzip -c "$f" > "$tmp/$name"; else cp "$f" "$tmp/$name"; fi
done
"$make_cifar" --out "$out" --mnist "$tmp/$(basename "$images" .gz)" "$tmp/$(basename "$labels" .gz)" \
  --test "$test_images"
