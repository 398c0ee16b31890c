#!/usr/bin/env bash
# Puts a CIFAR-10 data set (binary format) into DIR, default data/cifar10 under
# the repository root:
#   - DIR already complete: says what it is (synthetic, the official release
#     with its recorded checksums, or of unknown origin) and does nothing;
#   - else downloads the official release and checks its MD5;
#   - if that is impossible, generates synthetic data in the same format with
#     flare-make-cifar ($FLARE_MAKE_CIFAR, else build/bin/flare-make-cifar, else PATH).
# Environment: FLARE_OFFLINE=1 skips the download (tests, CI);
# FLARE_SYNTHETIC_TRAIN / FLARE_SYNTHETIC_TEST / FLARE_SYNTHETIC_SEED size the
# synthetic set (default 10000 / 2000 / 0).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${1:-$repo_root/data/cifar10}"
url="https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
md5="c32a1d4ab5d03f1284b67883e8d87530"
files=(data_batch_1.bin data_batch_2.bin data_batch_3.bin data_batch_4.bin data_batch_5.bin test_batch.bin)
record_bytes=3073

is_complete() {
  local f size
  for f in "${files[@]}"; do
    [[ -s "$dir/$f" ]] || return 1
    size=$(stat -c %s "$dir/$f")
    (( size % record_bytes == 0 )) || return 1
  done
}

source_of() {
  sed -n 's/.*"source": *"\([a-z]*\)".*/\1/p' "$dir/flare-data.json" 2>/dev/null | head -1
}

# The official set is named so only while every file still has the SHA-256
# recorded when it came out of the MD5-verified archive (flare-data.json).
official_files_unchanged() {
  local f recorded
  for f in "${files[@]}"; do
    recorded="$(sed -n "s/.*\"$f\": *\"\([0-9a-f]*\)\".*/\1/p" "$dir/flare-data.json")"
    [[ -n "$recorded" && "$(sha256sum "$dir/$f" | cut -d' ' -f1)" == "$recorded" ]] || return 1
  done
}

if is_complete; then
  case "$(source_of)" in
    synthetic)
      echo "prepare-data: $dir already holds synthetic CIFAR-10-format data ($(tr -d '\n ' < "$dir/flare-data.json"))" ;;
    official)
      if official_files_unchanged; then
        echo "prepare-data: $dir already holds CIFAR-10 (official binary release, checksums verified)"
      else
        echo "prepare-data: $dir holds CIFAR-10-format data, origin unknown (files differ from the checksums recorded at download); left as it is"
      fi ;;
    *)
      echo "prepare-data: $dir holds CIFAR-10-format data, origin unknown (no provenance in flare-data.json); left as it is" ;;
  esac
  exit 0
fi

# Returns non-zero with the reason in $why when the official set cannot be had.
why=""
download_official() {
  if [[ "${FLARE_OFFLINE:-0}" == "1" ]]; then
    why="FLARE_OFFLINE=1: download skipped"; return 1
  fi
  local tmp archive actual
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' RETURN
  archive="$tmp/cifar-10-binary.tar.gz"
  echo "prepare-data: downloading $url"
  if command -v curl >/dev/null; then
    curl -fL --connect-timeout 15 --speed-limit 1024 --speed-time 60 -o "$archive" "$url" \
      || { why="curl failed"; return 1; }
  elif command -v wget >/dev/null; then
    wget -q --connect-timeout=15 --read-timeout=60 --tries=2 -O "$archive" "$url" \
      || { why="wget failed"; return 1; }
  else
    why="neither curl nor wget is installed"; return 1
  fi
  actual="$(md5sum "$archive" | cut -d' ' -f1)"
  if [[ "$actual" != "$md5" ]]; then
    why="MD5 $actual, expected $md5"; return 1
  fi
  tar -xzf "$archive" -C "$tmp" || { why="cannot extract the archive"; return 1; }
  mkdir -p "$dir"
  rm -f "$dir/flare-data.json"  # whatever was there before is replaced by the official set
  cp "$tmp"/cifar-10-batches-bin/*.bin "$tmp"/cifar-10-batches-bin/batches.meta.txt "$dir"/
  write_official_provenance
}

# flare-data.json: where the files came from and their SHA-256, so that a run
# can tell later whether they are still the official release's.
write_official_provenance() {
  local f sep="" sums=""
  for f in "${files[@]}"; do
    sums+="$sep\"$f\": \"$(sha256sum "$dir/$f" | cut -d' ' -f1)\""
    sep=", "
  done
  printf '{"source": "official", "url": "%s", "archive_md5": "%s", "sha256": {%s}}\n' \
    "$url" "$md5" "$sums" > "$dir/flare-data.json.tmp"
  mv "$dir/flare-data.json.tmp" "$dir/flare-data.json"
}

if download_official; then
  echo "prepare-data: CIFAR-10 (official binary release, MD5 verified) is in $dir"
  exit 0
fi

echo "prepare-data: could not download CIFAR-10 ($why); using generated synthetic data instead"
make_cifar="${FLARE_MAKE_CIFAR:-}"
if [[ -z "$make_cifar" ]]; then
  if [[ -x "$repo_root/build/bin/flare-make-cifar" ]]; then
    make_cifar="$repo_root/build/bin/flare-make-cifar"
  else
    make_cifar="$(command -v flare-make-cifar || true)"
  fi
fi
if [[ -z "$make_cifar" || ! -x "$make_cifar" ]]; then
  echo "prepare-data: flare-make-cifar not found${make_cifar:+ at $make_cifar}; build it (scripts/build.sh) or set FLARE_MAKE_CIFAR" >&2
  exit 1
fi
"$make_cifar" --out "$dir" --train "${FLARE_SYNTHETIC_TRAIN:-10000}" \
  --test "${FLARE_SYNTHETIC_TEST:-2000}" --seed "${FLARE_SYNTHETIC_SEED:-0}"
