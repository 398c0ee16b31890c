#!/usr/bin/env bash
# Builds the libFuzzer targets with clang into build-fuzz/; for each target,
# replays the inputs that once failed (fuzz/regressions/<target>/), then fuzzes
# for FLARE_FUZZ_SECONDS (default 60) from its seed corpus (fuzz/corpus/<target>,
# plus jobs/ for the job spec). New interesting inputs go to
# build-fuzz/corpus/<target>, never into the repository. A crash, sanitizer
# report, timeout or OOM stops with the input saved as
# build-fuzz/findings/<target>-{crash,timeout,oom}-<sha1> and the command to
# replay it; commit it to fuzz/regressions/<target>/ with its fix and a
# regression test beside the reader's unit tests. (Regressions are replayed,
# not mutated: some are slow on purpose. <target>-slow-unit-* files are only
# notes: inputs that took 10 s.)
# Usage: fuzz/run-fuzzers.sh [target ...]   (default: every target)
set -euo pipefail
shopt -s nullglob
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$root/build-fuzz"
seconds="${FLARE_FUZZ_SECONDS:-60}"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then targets=(jobspec safetensors cifar); fi

cmake -S "$root/fuzz" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=None \
  -DCMAKE_CXX_COMPILER="${FLARE_FUZZ_CXX:-clang++-14}" >/dev/null
cmake --build "$build" -j "$(nproc)" --target "${targets[@]/%/_fuzzer}"

# Longest input tried per target: a few records or a job file, so each
# execution stays short and the time goes into variety.
declare -A max_len=([jobspec]=4096 [safetensors]=4096 [cifar]=12292)
# Seconds one input may take before it counts as a hang. A valid job may have
# 100000 sites: its export is read back in about 4 s here (sanitized), so the
# job spec gets 30 s; the quadratic read it once had took minutes.
declare -A timeout=([jobspec]=30 [safetensors]=10 [cifar]=10)
declare -A seeds=([jobspec]="$root/fuzz/corpus/jobspec $root/jobs")
# clang's sanitizers print file:line through llvm-symbolizer (llvm-14 has it here).
if [ -z "${ASAN_SYMBOLIZER_PATH:-}" ] && [ -x /usr/lib/llvm-14/bin/llvm-symbolizer ]; then
  export ASAN_SYMBOLIZER_PATH=/usr/lib/llvm-14/bin/llvm-symbolizer
fi
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"
failed=()
for target in "${targets[@]}"; do
  corpus="$build/corpus/$target"
  mkdir -p "$corpus" "$build/findings"
  dict=()
  if [ -f "$root/fuzz/$target.dict" ]; then dict=(-dict="$root/fuzz/$target.dict"); fi
  rm -f "$build/findings/$target-"*
  regressions=("$root/fuzz/regressions/$target"/*)
  if [ ${#regressions[@]} -ne 0 ]; then
    echo "fuzz: $target replays ${#regressions[@]} input(s) that once failed"
    if ! "$build/${target}_fuzzer" -timeout="${timeout[$target]}" -rss_limit_mb=2048 \
        -artifact_prefix="$build/findings/$target-" "${regressions[@]}" \
        >"$build/$target-regressions.log" 2>&1; then
      tail -n 60 "$build/$target-regressions.log"
      echo "fuzz: $target FAILS AN OLD FINDING AGAIN (log: $build/$target-regressions.log)"
      failed+=("$target")
      continue
    fi
  fi
  echo "fuzz: $target for ${seconds}s"
  # -rss_limit_mb: an input that makes a reader hold 2 GiB is an OOM finding.
  # -entropic_scale_per_exec_time: mutate fast inputs more than slow ones (a
  # job with thousands of sites), so the time goes into variety.
  # shellcheck disable=SC2086  # the seed folders are a word list
  if ! "$build/${target}_fuzzer" "$corpus" ${seeds[$target]:-$root/fuzz/corpus/$target} \
      "${dict[@]}" -max_total_time="$seconds" -max_len="${max_len[$target]}" \
      -timeout="${timeout[$target]}" -rss_limit_mb=2048 -entropic_scale_per_exec_time=1 \
      -print_final_stats=1 -artifact_prefix="$build/findings/$target-" \
      >"$build/$target.log" 2>&1; then
    tail -n 60 "$build/$target.log"
    echo "fuzz: $target FOUND A PROBLEM (log: $build/$target.log); replay with:"
    echo "  $build/${target}_fuzzer $build/findings/$target-*"
    failed+=("$target")
    continue
  fi
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added)' \
    "$build/$target.log" | sed "s/^/fuzz: $target /"
done
if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz: findings in: ${failed[*]}"
  exit 1
fi
echo "fuzz: no findings in ${targets[*]} (${seconds}s each)"
