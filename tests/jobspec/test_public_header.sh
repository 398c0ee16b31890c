#!/usr/bin/env bash
# Outside runtime/jobspec/, only its public header (jobspec/job_spec.hpp) is
# included: the others are the library's insides (toml++ types, schema helpers)
# and change with it. Usage: test_public_header.sh SOURCE_DIR
set -euo pipefail
root="$1"
folders=()
for folder in runtime sdk plugins tests bench fuzz; do
  [[ -d "$root/$folder" ]] && folders+=("$root/$folder")
done
outside=$(grep -rnE '#[[:space:]]*include[[:space:]]*[<"]jobspec/' "${folders[@]}" \
            --include='*.c' --include='*.cc' --include='*.cpp' --include='*.h' --include='*.hpp' \
          | grep -v "^$root/runtime/jobspec/" | grep -vE '[<"]jobspec/job_spec\.hpp[>"]' || true)
if [[ -n "$outside" ]]; then
  echo "jobspec-internal headers included outside runtime/jobspec/ (use jobspec/job_spec.hpp):"
  echo "$outside"
  exit 1
fi
echo "only jobspec/job_spec.hpp is included outside runtime/jobspec/"
