#!/usr/bin/env bash
# run_examples.sh CMAKE BUILD_DIR SOURCE_DIR TORCH_DIR GENERATOR C_COMPILER CXX_COMPILER
# Installs BUILD_DIR to a temporary prefix and moves it (the install is
# relocatable), builds each example against it (find_package(FlareSDK) with
# CMAKE_PREFIX_PATH = the prefix) and runs its job.toml with the prefix's
# flare-run; checks each job's metrics.jsonl (check_metrics.py).
set -euo pipefail
cmake=$1 build=$2 source=$3 torch_dir=$4 generator=$5 cc=$6 cxx=$7
work=$(mktemp -d "${TMPDIR:-/tmp}/flare-sdk-install.XXXXXX")
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix

step() { echo "== $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

step "install $build, then move the prefix to $prefix"
"$cmake" --install "$build" --prefix "$work/installed" >"$work/install.log" ||
  { cat "$work/install.log"; fail "cmake --install"; }
mv "$work/installed" "$prefix"
for file in bin/flare-run bin/flare-client bin/flare-worker plugins/libflare_fedavg.so \
    include/flare/plugin_abi.h include/flare/torch/lightning_trainer.hpp \
    lib/cmake/FlareSDK/FlareSDKConfig.cmake; do
  [ -e "$prefix/$file" ] || fail "the install has no $file"
done

# The examples as a user copies them, side by side (clipped_fedavg's job
# finds the C trainer in ../c_linear_trainer/build).
cp -r "$source/examples" "$work/examples"
rm -rf "$work"/examples/*/build "$work"/examples/*/workspace
launcher=()
if command -v ccache >/dev/null; then
  export CCACHE_BASEDIR=$work CCACHE_NOHASHDIR=1
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
unset FLARE_PLUGIN_PATH  # each job names its folders itself (plugin_path)

build_example() {
  local dir=$work/examples/$1
  step "build examples/$1"
  local start=$SECONDS
  "$cmake" -S "$dir" -B "$dir/build" -G "$generator" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_C_COMPILER="$cc" -DCMAKE_CXX_COMPILER="$cxx" "${launcher[@]}" \
    -DCMAKE_PREFIX_PATH="$prefix" -DTorch_DIR="$torch_dir" \
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF >"$dir/configure.log" 2>&1 ||
    { cat "$dir/configure.log"; fail "configuring examples/$1"; }
  "$cmake" --build "$dir/build" >"$dir/build.log" 2>&1 || { cat "$dir/build.log"; fail "building examples/$1"; }
  echo "   built in $((SECONDS - start)) s"
  # Only the entry crosses: everything else, libstdc++'s instantiations too, stays hidden.
  local exported
  exported=$(nm -D --defined-only "$dir"/build/libflare_*.so | awk '{print $3}')
  [ "$exported" = "flare_plugin_entry" ] || fail "examples/$1 exports more than its entry: $exported"
}

run_example() {
  local dir=$work/examples/$1
  step "run examples/$1/job.toml"
  (cd "$work" && "$prefix/bin/flare-run" "$dir/job.toml") >"$dir/run.log" 2>&1 ||
    { cat "$dir/run.log"; fail "flare-run examples/$1/job.toml"; }
  /usr/bin/python3 "$source/tests/sdk_install/check_metrics.py" "$1" "$dir/workspace" ||
    { cat "$dir/run.log"; fail "examples/$1's metrics"; }
}

build_example c_linear_trainer
run_example c_linear_trainer
build_example clipped_fedavg
run_example clipped_fedavg
build_example spirals_trainer
run_example spirals_trainer
step "all examples built and ran against the installed SDK"
