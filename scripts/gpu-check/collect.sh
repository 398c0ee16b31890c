#!/usr/bin/env bash
# Step 1 of the GPU check, on a machine of ours (Debian 12, apt reachable):
# downloads the Debian packages of packages.txt (apt-get download: nothing is
# installed), unpacks them with dpkg -x into .gpu-check/root and keeps only
# what a build reads, so the folder travels to a GPU machine that has no
# network and no Debian development packages. Fails if it is 64 MiB or more.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="$root/.gpu-check"
limit_mib=64
rm -rf "$out"
mkdir -p "$out/debs" "$out/root"

mapfile -t packages < <(sed 's/#.*//' "$root/scripts/gpu-check/packages.txt" | tr ' ' '\n' | grep .)
if ! (cd "$out/debs" && apt-get download "${packages[@]}" >/dev/null 2>"$out/apt.err"); then
  # The package lists may be missing on a fresh machine: refresh once, retry.
  sudo_cmd=(); [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  (cd "$out/debs" && apt-get download "${packages[@]}" >/dev/null)
fi
for deb in "$out"/debs/*.deb; do dpkg -x "$deb" "$out/root"; done

# What a build never reads: documentation, static archives (every library
# used is shared), and the Boost headers of libraries the project does not use.
usr="$out/root/usr"
rm -rf "$usr/share/doc" "$usr/share/man" "$usr/share/lintian" "$out/root/etc"
find "$out/root" -name '*.a' -delete
"$root/scripts/gpu-check/prune-boost.sh" "$usr/include/boost"
# Debian keeps architecture-specific headers (openssl/opensslconf.h) in
# include/<triplet>, which its compiler searches and another does not.
cp -a "$usr/include/x86_64-linux-gnu/." "$usr/include/" && rm -rf "$usr/include/x86_64-linux-gnu"
# Gloo: the headers only (collect.sh's packages.txt says why); the library is LibTorch's.
rm -f "$usr"/lib/x86_64-linux-gnu/libgloo*
# gRPC's CMake files check that every library they name exists, even the
# ones the project never links: those become empty files.
lib="$usr/lib/x86_64-linux-gnu"
for unused in "$lib"/libgrpc_unsecure.so.* "$lib"/libgrpc++_unsecure.so.* \
              "$lib"/libgrpcpp_channelz.so.* "$lib"/libgrpc++_reflection.so.* \
              "$lib"/libgrpc++_alts.so.* "$lib"/libgrpc++_error_details.so.*; do
  [ -L "$unused" ] || : > "$unused"
done

# pkg-config files say prefix=/usr; CMake's find modules read them (re2 is
# found that way), so they must point into this folder wherever it lands.
find "$out/root/usr" -name '*.pc' | while read -r pc; do
  up="$(dirname "${pc#"$out/root/usr/"}" | sed 's#[^/]*#..#g')"  # back to usr/
  sed -i -E 's#^([a-z_]+)=/usr(/|$)#\1=${pcfiledir}/'"$up"'\2#' "$pc"
done

# A CMake file that hard-codes its prefix (doctest's) is made relative too.
grep -rl --include='*.cmake' '^set(_IMPORT_PREFIX "/usr")' "$out/root/usr" | while read -r f; do
  up="$(dirname "${f#"$out/root/usr/"}" | sed 's#[^/]*#..#g')"
  sed -i "s#^set(_IMPORT_PREFIX \"/usr\")#get_filename_component(_IMPORT_PREFIX \"\${CMAKE_CURRENT_LIST_DIR}/$up\" ABSOLUTE)#" "$f"
done

# Symbolic links may not survive the trip: record them, remove them, and let
# run.sh recreate them.
(cd "$out/root" && find . -type l -printf '%p\t%l\n') > "$out/symlinks.tsv"
find "$out/root" -type l -delete
rm -rf "$out/debs"

# The plain-PyTorch reference's facts (data split, model, FedAvg) are ours to
# match: scripts/gpu-check/torch_reference_cuda.py runs them on the GPU.
size_mib=$(du -sm "$out" | cut -f1)
echo "gpu-check collect: ${#packages[@]} packages unpacked into .gpu-check ($size_mib MiB)"
if [ "$size_mib" -ge "$limit_mib" ]; then
  echo "gpu-check collect: .gpu-check is $size_mib MiB, over the ${limit_mib} MiB a device call carries" >&2
  exit 1
fi
