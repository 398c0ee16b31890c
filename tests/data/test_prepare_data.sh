#!/usr/bin/env bash
# test_prepare_data.sh PREPARE_DATA_SH FLARE_MAKE_CIFAR: offline, prepare-data.sh
# generates synthetic data, then leaves a complete set (synthetic or official) alone.
set -euo pipefail
script="$1"
export FLARE_MAKE_CIFAR="$2" FLARE_OFFLINE=1 FLARE_SYNTHETIC_TRAIN=50 FLARE_SYNTHETIC_TEST=20
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

out="$(bash "$script" "$work/data")" || fail "first run exited with $?"
echo "$out"
grep -q "could not download CIFAR-10 (FLARE_OFFLINE=1" <<<"$out" || fail "expected the fallback notice, got: $out"
for f in data_batch_1.bin data_batch_2.bin data_batch_3.bin data_batch_4.bin data_batch_5.bin test_batch.bin; do
  [[ -s "$work/data/$f" ]] || fail "expected $f after the first run"
done
[[ $(stat -c %s "$work/data/test_batch.bin") == $((20 * 3073)) ]] || fail "expected 20 test records"
before="$(md5sum "$work/data/data_batch_1.bin")"

out="$(bash "$script" "$work/data")" || fail "second run exited with $?"
echo "$out"
grep -q "already holds synthetic" <<<"$out" || fail "expected 'already holds synthetic', got: $out"
[[ "$(md5sum "$work/data/data_batch_1.bin")" == "$before" ]] || fail "second run rewrote the data"

rm "$work/data/flare-data.json"  # CIFAR-format files of unknown origin
out="$(bash "$script" "$work/data")" || fail "third run exited with $?"
grep -q "origin unknown (no provenance" <<<"$out" || fail "expected origin unknown, got: $out"
[[ "$(md5sum "$work/data/data_batch_1.bin")" == "$before" ]] || fail "third run rewrote the data"

# A provenance file as a verified download writes it (checksums by coreutils).
sums=""
for f in data_batch_1.bin data_batch_2.bin data_batch_3.bin data_batch_4.bin data_batch_5.bin test_batch.bin; do
  sums+="${sums:+, }\"$f\": \"$(sha256sum "$work/data/$f" | cut -d' ' -f1)\""
done
echo "{\"source\": \"official\", \"archive_md5\": \"x\", \"sha256\": {$sums}}" > "$work/data/flare-data.json"
out="$(bash "$script" "$work/data")" || fail "fourth run exited with $?"
grep -q "already holds CIFAR-10 (official binary release, checksums verified)" <<<"$out" ||
  fail "expected the official set recognised, got: $out"
printf '\x07' | dd of="$work/data/data_batch_4.bin" bs=1 seek=100 conv=notrunc status=none
out="$(bash "$script" "$work/data")" || fail "fifth run exited with $?"
grep -q "origin unknown (files differ" <<<"$out" || fail "expected a changed file noticed, got: $out"

rm "$work/data/data_batch_3.bin"  # incomplete, and no generator to remake it
out="$(FLARE_MAKE_CIFAR=/nonexistent bash "$script" "$work/data" 2>&1)" && fail "expected failure without generator"
grep -q "flare-make-cifar not found" <<<"$out" || fail "expected a missing-generator message, got: $out"
echo "prepare-data.sh behaves"
