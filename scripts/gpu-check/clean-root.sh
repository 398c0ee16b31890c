#!/usr/bin/env bash
# Here, before spending GPU time: proves that .gpu-check/ (collect.sh) is all
# the build needs besides a compiler, CMake, ninja and a LibTorch. A fresh
# Debian 12 root (debootstrap) gets those and nothing else: Debian's LibTorch
# runtime with its headers unpacked stands in for a PyTorch wheel, without
# libtorch-dev's package dependencies, which would bring protobuf's headers in
# (Debian's LibTorch needs its separate libgloo-dev unpacked too; the wheel's
# case, Gloo inside LibTorch, is built by run.sh on the GPU machine). Inside it,
# build.sh builds from .gpu-check/ alone, then the seed job runs on the CPU
# (2 sites x 1 rank, 1 round) and the data-parallel tests run.
#   scripts/gpu-check.sh clean-root        (root; needs debootstrap; ~15 min)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
[ -f "$root/.gpu-check/symlinks.tsv" ] || "$root/scripts/gpu-check/collect.sh"
command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap >/dev/null
chroot_dir="$(mktemp -d /var/tmp/flare-clean-root.XXXXXX)"
cleanup() {
  for m in proc dev/shm dev; do umount "$chroot_dir/$m" 2>/dev/null || true; done
  rm -rf --one-file-system "$chroot_dir"
}
trap 'cleanup; rm -f "$chroot_dir.log"' EXIT

echo "clean-root: debootstrap bookworm into $chroot_dir"
debootstrap --variant=minbase bookworm "$chroot_dir" http://deb.debian.org/debian > "$chroot_dir.log" 2>&1 ||
  { tail -20 "$chroot_dir.log"; exit 1; }
in_root() { chroot "$chroot_dir" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root "$@"; }
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  g++ cmake ninja-build libtorch1.13 > "$chroot_dir.log" 2>&1 || { tail -20 "$chroot_dir.log"; exit 1; }
# LibTorch's headers and CMake files (and those of the libraries its CMake
# files name), without libtorch-dev's dependencies.
(in_root sh -c 'cd /tmp && apt-get download libtorch-dev libgflags-dev libgoogle-glog-dev libgloo-dev >/dev/null 2>&1' &&
  for deb in "$chroot_dir"/tmp/*.deb; do dpkg -x "$deb" "$chroot_dir"; done)
for dev in libprotobuf-dev libgrpc++-dev libboost1.74-dev libspdlog-dev; do
  if in_root dpkg-query -W "$dev" >/dev/null 2>&1; then echo "clean-root: $dev is installed" >&2; exit 1; fi
done

mkdir -p "$chroot_dir/src" "$chroot_dir/dev/shm"
# A copy, not a bind mount: the build must not see later edits of the checkout.
tar -C "$root" --exclude='./build*' --exclude=./.git --exclude=./data --exclude='./workspace*' \
  -cf - . | tar -C "$chroot_dir/src" -xf -
mount -t proc proc "$chroot_dir/proc"
mount --bind /dev "$chroot_dir/dev"
mount -t tmpfs tmpfs "$chroot_dir/dev/shm"
echo "clean-root: build from .gpu-check alone"
in_root /src/scripts/gpu-check/build.sh /tmp/build /usr/lib/x86_64-linux-gnu/cmake /tmp/logs
echo "clean-root: seed job on the CPU and the data-parallel tests"
in_root sh -c 'export LD_LIBRARY_PATH=/src/.gpu-check/root/usr/lib/x86_64-linux-gnu
  set -e
  /tmp/build/bin/flare-make-cifar --out /tmp/data --train 2000 --test 500 --seed 0 >/dev/null
  /tmp/build/bin/flare-run /src/jobs/cifar10.toml --n_clients 2 --num_rounds 1 \
    --workspace /tmp/ws --set data.dir=/tmp/data --set clients.devices=1 | tail -4
  /tmp/build/bin/test_torch_sdk_data_parallel | tail -3'
echo "clean-root: passed"
