#!/usr/bin/env bash
# The second command: install what is missing, then three phases, each printed
# as it starts; the command fails when any phase fails (all of them run).
#   build     build/ (Release) and every test (ctest)
#   sanitize  build-asan/: the same code and tests under ASan + UBSan + LSan
#   fuzz      the libFuzzer targets (build-fuzz/), FLARE_FUZZ_SECONDS each (default 60)
# FLARE_TEST_PHASES picks some ("build fuzz"); extra arguments go to ctest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
phases="${FLARE_TEST_PHASES:-build sanitize fuzz}"
export FLARE_OFFLINE=1  # tests never download anything
"$root/scripts/install-deps.sh"

phase_build() {
  "$root/scripts/build.sh"
  ctest --test-dir "$root/build" --output-on-failure -j 2 "$@"
}

# No benchmarks (FLARE_SANITIZE also drops tcmalloc and the CUDA compile
# check); -O1 and line tables keep the build short and the reports readable.
phase_sanitize() {
  local tree="$root/build-asan"
  cmake -S "$root" -B "$tree" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" \
    -DFLARE_SANITIZE=ON -DFLARE_BUILD_BENCH=OFF >/dev/null
  cmake --build "$tree" -j "$(nproc)"
  rm -rf "$tree/sanitizer-reports"
  local status=0
  ctest --test-dir "$tree" --output-on-failure -j 2 "$@" || status=$?
  # A report in a process whose exit status no test looks at still counts.
  local reports=()
  mapfile -t reports < <(grep -lE 'ERROR: |runtime error:' "$tree"/sanitizer-reports/* 2>/dev/null)
  if [ ${#reports[@]} -ne 0 ]; then
    for report in "${reports[@]}"; do echo "== $report"; cat "$report"; done
    echo "sanitize: ${#reports[@]} sanitizer report(s) above"
    status=1
  fi
  return "$status"
}

phase_fuzz() {
  "$root/fuzz/run-fuzzers.sh"
}

failed=()
for phase in $phases; do
  echo "==== run-tests: phase '$phase' ($(date +%T))"
  start=$SECONDS
  set +e
  (set -e; "phase_$phase" "$@")
  status=$?
  set -e
  echo "==== run-tests: phase '$phase' $([ $status -eq 0 ] && echo passed || echo FAILED)" \
    "in $((SECONDS - start)) s"
  if [ $status -ne 0 ]; then failed+=("$phase"); fi
done
if [ ${#failed[@]} -ne 0 ]; then
  echo "==== run-tests: FAILED: ${failed[*]}"
  exit 1
fi
echo "==== run-tests: all phases passed ($phases)"
