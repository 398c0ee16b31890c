#!/usr/bin/env bash
# Installs the Debian 12 packages flare-cpp needs, only those missing; safe to re-run.
set -euo pipefail

packages=(
  cmake g++ make ninja-build pkg-config ccache ca-certificates curl
  libtorch-dev libgloo-dev                        # LibTorch + c10d (Gloo headers)
  libgoogle-perftools-dev                         # tcmalloc for the training processes
  libopenblas0-openmp                             # LibTorch's BLAS: else the slow reference one;
                                                  # OpenMP build: the serial one is not thread-safe
  libboost-dev libboost-program-options-dev       # Boost.DLL (header-only), Program_options
  libtomlplusplus-dev libspdlog-dev libfmt-dev doctest-dev
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  libdlpack-dev nlohmann-json3-dev libssl-dev
  openssl                                         # the CLI that checks flare-provision's certificates
  iproute2                                        # ip netns: the deployment test's separate hosts
  python3-protobuf                                # the independent reader of TensorBoard event files
  python3-numpy                                   # the test that reads a model file from Python
  chromium-headless-shell python3-pil             # the test that renders report.html to a PNG
  clang-14 libclang-rt-14-dev llvm-14             # libFuzzer (fuzz/), its runtime, llvm-symbolizer
  slurm-wlm                                       # the test that submits deploy/slurm's site script
  systemd                                         # systemd-analyze: the test that verifies deploy/systemd/
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages are installed"
  exit 0
fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
echo "install-deps: installing ${missing[*]}"
"${sudo_cmd[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
