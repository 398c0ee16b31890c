# The deployment itself (docs/deploying.md; the contract in
# /work/notes/deploy-contract.md): flare-server on the server host, a
# flare-client --startup daemon on each site host with its own data, the seed
# job submitted from the admin host with flare-admin, and what the admin and
# the server's files then show. Sourced by scripts/deploy-netns-test.sh.
#
# Lines marked CONTRACT assume an output format the contract does not fix
# (or a behaviour it only implies): check them when flare-server,
# flare-client --startup and flare-admin land.

python=/usr/bin/python3
[[ -x $python ]] || python=python3
job_name=netns-cifar-ten  # no digit: the rounds are looked for in list's line

server_workspace() { echo "$work/hosts/server/workspace"; }
site_workspace() { echo "$work/hosts/$1/workspace"; }
# CONTRACT: the main port audits here as a job's server does (audit_log.cpp:
# connection, handshake_refused, request_refused lines, same fields and reasons).
server_audit() { echo "$(server_workspace)/logs/audit.jsonl"; }
job_audit() { echo "$(server_workspace)/jobs/$1/logs/audit.jsonl"; }
jsonl_has() { "$python" "$root/tests/deploy/jsonl_has.py" "$@"; }

# The address the server sees HOST's connections from: on loopback every host
# connects from 127.0.0.1, whatever 127.x address it dials.
peer_address_of() {
  if [[ $network_mode == netns ]]; then echo "${host_address[$1]}"; else echo 127.0.0.1; fi
}
# As a pattern of gRPC's peer text (ipv4:ADDRESS:PORT).
peer_pattern_of() {
  local address
  address=$(peer_address_of "$1")
  echo "^ipv4:${address//./\\.}:[0-9]+\$"
}

# admin ARGS...: flare-admin on the admin host with the admin's startup folder.
admin() { admin_with "$(startup_of admin)" "$@"; }

# admin_with STARTUP ARGS...: flare-admin with that startup folder, bounded;
# $admin_out: its stdout, $admin_said: stdout and stderr (for messages),
# $admin_status: its exit status.
admin_with() {
  local folder=$1
  shift
  admin_status=0
  admin_out=$(on admin timeout 120 "$bin/flare-admin" --startup "$folder" "$@" \
                2> "$work/admin.stderr") || admin_status=$?
  admin_said="$admin_out $(cat "$work/admin.stderr")"
  printf 'flare-admin --startup %s %s: exit %s\n%s\n' "$folder" "$*" "$admin_status" \
    "$admin_said" >> "$work/logs/admin.log"
}

# write_job FILE ROUNDS: the seed job (jobs/cifar10.toml), small: ROUNDS
# rounds, one CPU rank per site, batches of 16. Left as they are, for the
# deployment to replace (CONTRACT): data.dir (each site's --data-dir),
# job.workspace (the server's and each site's workspace), server.host/port
# (the job's port on the server's address).
write_job() {
  local out=$1 rounds=$2
  cp "$root/jobs/cifar10.toml" "$out"
  set_job_line "$out" 'name = "cifar10"' "name = \"$job_name\""
  set_job_line "$out" 'num_rounds = 5' "num_rounds = $rounds"
  set_job_line "$out" 'devices = 2' 'devices = 1'
  set_job_line "$out" 'accelerator = "auto"' 'accelerator = "cpu"'
  set_job_line "$out" 'batch_size = 4' 'batch_size = 16'
}

# set_job_line FILE OLD NEW: the one line starting with OLD (after spaces)
# becomes NEW; fails if there is not exactly one (the seed job changed).
set_job_line() {
  local file=$1 old=$2 new=$3 count
  count=$(grep -c "^[[:space:]]*$old" "$file" || true)
  [[ $count == 1 ]] || fail "jobs/cifar10.toml: expected one line '$old', found $count"
  sed -i "s|^\([[:space:]]*\)$old.*|\1$new|" "$file"
}

start_server() {
  local s
  s=$(startup_of server)
  start_on server "$work/logs/flare-server.log" "$bin/flare-server" --startup "$s" \
    --workspace "$(server_workspace)" --listen "${host_address[server]}" \
    --job-ports "$((server_port + 1))-$((server_port + 20))"
  server_pid=$last_pid
  wait_until 30 "flare-server listening on ${host_address[server]}:$server_port" \
    listening server "${host_address[server]}" "$server_port"
}

start_sites() {
  local site
  declare -gA site_pid
  for site in site-1 site-2; do
    start_on "$site" "$work/logs/flare-client-$site.log" "$bin/flare-client" \
      --startup "$(startup_of "$site")" --workspace "$(site_workspace "$site")" \
      --data-dir "$work/hosts/$site/data"
    site_pid[$site]=$last_pid
  done
}

# submit_job FILE [--wait]: sets $job_id.
submit_job() {
  admin submit "$@"
  ((admin_status == 0)) || fail "flare-admin submit $*: exit $admin_status: $admin_said"
  # The job id: the first word of submit's output that `status` knows (CONTRACT:
  # submit prints the id among its first few words).
  local word submitted=$admin_said
  job_id=""
  for word in $(grep -oE '[A-Za-z0-9][A-Za-z0-9_.:-]*' <<< "$admin_out" | head -8); do
    admin status "$word"
    if ((admin_status == 0)); then job_id=$word; break; fi
  done
  [[ -n $job_id ]] || fail "flare-admin submit printed no job id that status knows: $submitted"
}

# The finished job as the admin sees it, and as the server's files show it.
check_finished_job() {
  local id=$1 rounds=$2 line
  admin list
  ((admin_status == 0)) || fail "flare-admin list: exit $admin_status: $admin_said"
  # CONTRACT: one line per job: id, name, state, rounds, sites (rounds as "2" or "2/2").
  line=$(grep -F -- "$id" <<< "$admin_out" | head -1)
  [[ -n $line ]] || fail "flare-admin list does not show job $id: $admin_out"
  for word in finished site-1 site-2; do
    grep -qw -- "$word" <<< "$line" || fail "flare-admin list: job $id without '$word': $line"
  done
  # The rounds, once the words that may hold digits are gone.
  local figures=${line//"$id"/}
  figures=${figures//site-[12]/}
  grep -qE "(^|[^0-9])$rounds(/$rounds)?([^0-9]|$)" <<< "$figures" ||
    fail "flare-admin list: job $id without $rounds rounds: $line"

  admin metrics "$id" --out "$work/admin-metrics.jsonl"
  ((admin_status == 0)) || fail "flare-admin metrics: exit $admin_status: $admin_said"
  for ((round = 1; round <= rounds; round++)); do
    jsonl_has "$work/admin-metrics.jsonl" kind=global "round=$round" ||
      fail "flare-admin metrics: no global line for round $round"
  done
  jsonl_has "$work/admin-metrics.jsonl" kind=job status=succeeded "rounds_completed=$rounds" ||
    fail "flare-admin metrics: no job line succeeded after $rounds rounds"

  admin download "$id" --model final --out "$work/final.safetensors"
  ((admin_status == 0)) || fail "flare-admin download --model final: exit $admin_status: $admin_said"
  [[ -s $work/final.safetensors ]] || fail "flare-admin download wrote an empty file"
  "$python" - "$work/final.safetensors" << 'PY' || fail "the downloaded model is not safetensors"
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
(n,) = struct.unpack("<Q", raw[:8])
tensors = {k: v for k, v in json.loads(raw[8:8 + n]).items() if k != "__metadata__"}
assert tensors and all(len(raw) >= 8 + n + v["data_offsets"][1] for v in tensors.values())
PY
}

# Both sites' verified identities, each from its own host's address, in the
# server's audit and in the job's.
check_site_identities() {
  local id=$1 site audit
  for audit in "$(server_audit)" "$(job_audit "$id")"; do
    for site in site-1 site-2; do
      # CONTRACT (server's audit): the main port logs each daemon's connection as the job's does.
      jsonl_has "$audit" event=connection "identity=site/$site" "peer~$(peer_pattern_of "$site")" ||
        fail "$audit: no connection of site/$site from $(peer_address_of "$site")"
    done
  done
  jsonl_has "$(server_audit)" event=connection "identity=admin/$admin_name" \
    "peer~$(peer_pattern_of admin)" || fail "$(server_audit): no connection of the admin"
}

run_deployment() {
  local program
  for program in flare-server flare-client flare-worker flare-admin; do
    [[ -x $bin/$program ]] || fail "$bin/$program is missing (--phases all needs it)"
  done
  mkdir -p "$work/hosts/admin/jobs"
  start_server
  start_sites
  say "flare-server on ${host_address[server]}:$server_port, a flare-client daemon on site-1 and site-2"

  write_job "$work/hosts/admin/jobs/small.toml" 2
  submit_job "$work/hosts/admin/jobs/small.toml" --wait
  first_job=$job_id
  say "job $first_job: submitted from the admin host and finished"
  check_finished_job "$first_job" 2
  check_site_identities "$first_job"
  say "job $first_job: list, metrics, the final model and both sites' identities check out"
}

# stop_deployment: SIGTERM to the sites and the server; each exits 0.
stop_deployment() {
  local site
  for site in site-1 site-2; do
    stop_pid "${site_pid[$site]}" 30
    ((stopped_status == 0)) || fail "flare-client --startup on $site exited $stopped_status on SIGTERM"
  done
  stop_pid "$server_pid" 30
  ((stopped_status == 0)) || fail "flare-server exited $stopped_status on SIGTERM"
  say "the sites and the server stopped on SIGTERM, exit 0"
}
