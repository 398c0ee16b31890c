#!/bin/sh
# lookup-order.sh PROGRAM OUT: writes to OUT, one path per line, PROGRAM's own
# libraries in their link order and then the libraries that its symbol lookups
# end in most often, busiest first: the LD_PRELOAD with which its launcher
# starts it (cmake/FlareLookupOrder.cmake, runtime/common/lookup_order.cpp).
#
# Why: the dynamic linker looks every symbol up library by library in load
# order. LibTorch's ~340 libraries (Debian's pulls in OpenCV, GDAL, Qt, ...)
# load breadth first, so most of the ~150,000 lookups at start-up (LibTorch
# is linked with BIND_NOW) walk far down the list: a third of a LibTorch
# process's start-up. Naming the busiest providers early shortens the walks.
#
# Safe by construction: the order is kept only if every symbol reference of
# the program (all of them: LD_BIND_NOW) binds to the same library as before.
# C++ names (_Z...) are the exception: one defined in several libraries is a
# template or inline entity compiled from the same headers, any copy of it is
# the same code. Where another symbol would move (two libraries implement it,
# e.g. LAPACK in liblapack and in OpenBLAS), its old provider is named before
# its new one and the check runs again. If that does not settle, or anything
# is unexpected, OUT is left empty: the target then links as before.
set -u
program=$1
out=$2
limit=48 # providers named; the tail of the list gains little

# "referencing-file|symbol provider" for every binding, sorted.
bindings() { # $1: LD_PRELOAD
  LD_PRELOAD="$1" LD_BIND_NOW=1 LD_DEBUG=bindings "$program" 2>&1 >/dev/null </dev/null |
    awk '/binding file / { s = $0; sub(/.*symbol `/, "", s); sub(/'"'"'.*/, "", s);
                          print $4 "|" s, $7 }' | sort
}

give_up() {
  rm -f "$out.before" "$out.after"
  : >"$out"
  echo "lookup-order: $1; the linker's default order is kept" >&2
  exit 0
}

bindings "" >"$out.before" || give_up "the program did not run"
[ -s "$out.before" ] || give_up "no bindings traced (no LD_DEBUG?)"

# The program's own libraries stay first, in their order: they decide which
# definition wins where several exist (e.g. tcmalloc's malloc over libc's).
scope=$(LD_DEBUG=scopes "$program" 2>&1 >/dev/null </dev/null | sed -n 's/.*scope 0: //p' | head -n 1)
own=""
for soname in $(readelf -d "$program" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
  for path in $scope; do
    case $path in */"$soname") own="$own $path" ;; esac
  done
done

list=""
count=0
for path in $(awk '{ n[$2]++ } END { for (p in n) print n[p], p }' "$out.before" | sort -rn |
  awk '{ print $2 }'); do
  case " $own " in *" $path "*) continue ;; esac
  case $path in /*) ;; *) continue ;; esac # linux-vdso
  case $path in *ld-linux*|"$program") continue ;; esac
  [ -f "$path" ] || continue
  list="$list $path"
  count=$((count + 1))
  [ "$count" -ge "$limit" ] && break
done

for attempt in 1 2 3 4 5 6 7 8; do
  bindings "$own$list" >"$out.after" || give_up "the program did not run with the new order"
  # "old new" for every binding that changed provider.
  moved=$(join -o 0,1.2,2.2 "$out.before" "$out.after" |
    awk '$1 !~ /\|_Z/ && $2 != $3 { print $2, $3 }' | sort -u)
  if [ -z "$moved" ]; then
    rm -f "$out.before" "$out.after"
    printf '%s\n' $own $list >"$out"
    exit 0
  fi
  set -- $moved
  while [ $# -ge 2 ]; do
    list=$(printf ' %s' $list | sed "s| $1||")
    case " $list " in
      *" $2 "*) list=$(printf ' %s' $list | sed "s| $2| $1 $2|") ;;
      *) list=" $1$list" ;; # the new one came early as a dependency of a named one
    esac
    shift 2
  done
done
give_up "some symbols kept binding elsewhere"
