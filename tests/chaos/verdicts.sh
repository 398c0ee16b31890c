#!/usr/bin/env bash
# scripts/chaos.sh's verdicts against a stand-in flare-run whose end is known
# (fake_flare_run.py): a completed job and a failed one with its reason pass;
# a hang, an exit without a reason, a process left behind and a corrupted
# model or checkpoint each fail the chaos run, naming what went wrong, and
# leave no process. A killed server is resumed when flare-run can, and
# recorded as "resume not available" when not.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
chaos="$here/../../scripts/chaos.sh"
python=/usr/bin/python3
[[ -x $python ]] || python=python3
tmp=$(mktemp -d /tmp/flare-chaos-verdicts.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/bin"
printf '#!/bin/sh\nexec %s %s "$@"\n' "$python" "$here/fake_flare_run.py" > "$tmp/bin/flare-run"
printf '#!/bin/sh\nmkdir -p "$2"\n' > "$tmp/bin/flare-make-cifar"  # --out DIR
chmod +x "$tmp/bin/flare-run" "$tmp/bin/flare-make-cifar"
failures=0

# expect MODE EXIT_STATUS PATTERN... [-- CHAOS_OPTIONS...]: one iteration of
# chaos.sh against the stand-in in MODE exits EXIT_STATUS, its output matches
# every PATTERN (grep -E), and nothing naming its work folder is left running.
expect() {
  local mode=$1 want=$2 status=0 output pattern left
  shift 2
  local patterns=()
  while (($#)) && [[ $1 != -- ]]; do patterns+=("$1"); shift; done
  (($#)) && shift
  local work="$tmp/work-$mode-$RANDOM"
  # --victims rank unless told: the stand-in has no ranks, so nothing is
  # signalled however slowly it starts on a loaded machine.
  output=$(CHAOS_FAKE_MODE=$mode bash "$chaos" --iterations 1 --seed 1 --rounds 3 --window 1 \
    --timeout 4 --bin "$tmp/bin" --work "$work" --victims rank "$@" 2>&1) || status=$?
  for pattern in "${patterns[@]}"; do
    grep -qE -- "$pattern" <<< "$output" ||
      { echo "FAIL $mode: no '$pattern' in:"; echo "$output"; failures=$((failures + 1)); }
  done
  [[ $status == "$want" ]] ||
    { echo "FAIL $mode: exit $status, expected $want:"; echo "$output"; failures=$((failures + 1)); }
  left=$(grep -lsF -- "$work" /proc/[0-9]*/cmdline || true)
  [[ -z $left ]] || { echo "FAIL $mode: left running: $left"; failures=$((failures + 1)); }
  echo "checked $mode: exit $status"
}

expect complete 0 'outcome=COMPLETED rounds=3/3' 'COMPLETED 1,'
expect failed 0 'outcome=FAILED rounds=1/3' 'reason="site-2 vanished \(a stand-in.s reason\)"'
expect silent 1 'outcome=UNCLEAR' "reason=\"exit 1 without a 'the job failed: <reason>' line\""
expect hang 1 'outcome=HANG' 'still running after 4 s' '1 went wrong'
expect orphan 1 'outcome=FAILED' 'ORPHANS: .*pid [0-9]+' 'left processes 1'
expect corrupt 1 'outcome=COMPLETED' \
  'CORRUPTED: .*global_round_1.safetensors: tensor .w.: offsets \[0, 8\] outside the 5-byte data' \
  'checkpoint_round_2.ckpt: SHA-256 mismatch' 'corrupted files 1'
expect resume 0 'signal=SIGKILL at' 'outcome=COMPLETED rounds=3/3' 'resume available' \
  -- --victims server --signals KILL
expect hang 0 'outcome=RESUME-UNAVAILABLE' 'server killed: resume not available' \
  -- --victims server --signals KILL
((failures == 0)) || { echo "$failures check(s) failed"; exit 1; }
echo "all verdicts as expected"
