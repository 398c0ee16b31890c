#!/usr/bin/env bash
# prune-boost.sh INCLUDE_ROOT: keeps, of the unpacked Boost headers under
# INCLUDE_ROOT/boost, the headers the project's Boost includes reach (found by
# the preprocessor, so the list follows the code) and deletes the rest
# (162 MiB -> a few). config/, predef/ and mpl's preprocessed gcc headers stay
# whole: Boost picks among them by compiler version, which differs on the GPU machine.
set -euo pipefail
include_root="$(cd "$1/.." && pwd)"
project="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
probe="$(mktemp --suffix=.cpp)"
keep="$(mktemp)"
trap 'rm -f "$probe" "$keep"' EXIT
grep -rhoE '#include <boost/[^>]+>' "$project"/{runtime,sdk,plugins,tests,bench} | sort -u > "$probe"
c++ -std=c++20 -M -I "$include_root" "$probe" | tr ' \\' '\n\n' |
  sed -n "s#^$include_root/boost/##p" | sort -u > "$keep"
cd "$include_root/boost"
find . -type f | sed 's#^\./##' | grep -vE '^(config|predef|mpl/aux_/preprocessed/gcc)/' |
  sort | comm -23 - "$keep" | xargs -r rm -f
find . -type d -empty -delete
