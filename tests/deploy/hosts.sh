# The scenario's hosts (server, site-1, site-2, admin) and every process the
# test starts on them. netns: a network namespace per host, each with its own
# loopback and an eth0 on one bridge (in a fifth, "hub" namespace), addresses
# in 10.213.47.0/24: separate network stacks, as on separate machines.
# loopback: where namespaces are not allowed, addresses of 127.0.0.0/8 on this
# machine (a random 127.A.B.0/24 per run, so parallel runs do not meet).
# Sourced by scripts/deploy-netns-test.sh, which defines say, fail and $work.

hosts=(server site-1 site-2 admin)
declare -A host_address host_ns
network_mode=""
server_port=""
started_pids=()       # every process started, each the leader of its own session
created_namespaces=()
run_tag="flare-dt-$$-$RANDOM"

# Why namespaces cannot be used here; prints nothing if they can.
netns_unavailable_reason() {
  if [[ $(id -u) != 0 ]]; then echo "not root"; return; fi
  if ! command -v ip > /dev/null; then echo "no ip command (iproute2)"; return; fi
  local probe="$run_tag-probe"
  if ! ip netns add "$probe" 2> /dev/null; then echo "ip netns add is refused"; return; fi
  if ! ip netns exec "$probe" true 2> /dev/null; then
    echo "ip netns exec is refused"  # e.g. a container that may not remount /sys
  elif ! ip -n "$probe" link add probe0 type veth peer name probe1 2> /dev/null; then
    echo "veth pairs cannot be created"
  elif ! ip -n "$probe" link add probebr type bridge 2> /dev/null; then
    echo "bridges cannot be created"
  fi
  ip netns del "$probe" 2> /dev/null || true
}

# set_up_hosts auto|netns|loopback: the hosts, their addresses and the server's port.
set_up_hosts() {
  local wanted=$1 reason
  reason=$(netns_unavailable_reason)
  if [[ $wanted == netns && -n $reason ]]; then fail "network namespaces asked for, but $reason"; fi
  if [[ $wanted == loopback || -n $reason ]]; then
    [[ $wanted == loopback ]] && reason="asked for"
    say "network: loopback 127.x addresses (namespaces not used: $reason)"
    set_up_loopback_hosts
  else
    say "network: a namespace per host, joined by veth pairs through a bridge"
    set_up_namespace_hosts
  fi
}

set_up_loopback_hosts() {
  network_mode=loopback
  local net="127.$((RANDOM % 200 + 20)).$((RANDOM % 250 + 1))"
  host_address=([server]=$net.1 [site-1]=$net.11 [site-2]=$net.12 [admin]=$net.21)
  # The job ports (port+1 .. port+100) too: a random block, away from others' runs.
  server_port=$((20000 + (RANDOM % 300) * 128))
}

set_up_namespace_hosts() {
  network_mode=netns
  host_address=([server]=10.213.47.1 [site-1]=10.213.47.11 [site-2]=10.213.47.12
                [admin]=10.213.47.21)
  server_port=8002
  local hub="$run_tag-hub" host ns
  ip netns add "$hub" && created_namespaces+=("$hub")
  ip -n "$hub" link set lo up
  ip -n "$hub" link add br0 type bridge
  ip -n "$hub" link set br0 up
  for host in "${hosts[@]}"; do
    ns="$run_tag-$host"
    ip netns add "$ns" && created_namespaces+=("$ns")
    host_ns[$host]=$ns
    ip -n "$ns" link set lo up
    # Interface names are per namespace: the same in every run, no collision.
    ip -n "$hub" link add "v-$host" type veth peer name eth0 netns "$ns"
    ip -n "$hub" link set "v-$host" master br0 up
    ip -n "$ns" addr add "${host_address[$host]}/24" dev eth0
    ip -n "$ns" link set eth0 up
  done
}

# on HOST CMD...: runs CMD on HOST (in its namespace), in the foreground.
on() {
  local host=$1
  shift
  if [[ $network_mode == netns ]]; then
    ip netns exec "${host_ns[$host]}" "$@"
  else
    "$@"
  fi
}

# start_on HOST LOG CMD...: starts CMD on HOST in the background, in a session
# of its own (so its children can be stopped with it); its pid is $last_pid.
start_on() {
  local host=$1 log=$2
  shift 2
  # Simple commands, not `on ... &` (a subshell): ip netns exec and setsid exec,
  # and setsid does not fork (a background job leads no group), so $! is CMD's pid.
  if [[ $network_mode == netns ]]; then
    ip netns exec "${host_ns[$host]}" setsid "$@" < /dev/null > "$log" 2>&1 &
  else
    setsid "$@" < /dev/null > "$log" 2>&1 &
  fi
  last_pid=$!
  started_pids+=("$last_pid")
}

is_running() {
  [[ -e /proc/$1 ]] && [[ $(awk '{print $3}' "/proc/$1/stat" 2> /dev/null) != Z ]]
}

not_running() { ! is_running "$1"; }

# listening HOST ADDRESS PORT: a TCP listener on HOST on ADDRESS:PORT (or on
# every address). Read from /proc/net (per namespace): no ss needed.
listening() {
  local a b c d
  IFS=. read -r a b c d <<< "$2"
  local exact any
  exact=$(printf '%02X%02X%02X%02X:%04X' "$d" "$c" "$b" "$a" "$3")
  any=$(printf '00000000:%04X' "$3")
  on "$1" cat /proc/net/tcp /proc/net/tcp6 2> /dev/null | awk -v exact="$exact" -v any="$any" \
    -v port=":$(printf '%04X' "$3")" '$4 == "0A" && ($2 == exact || $2 == any ||
      (length($2) == 37 && substr($2, 33) == port)) { found = 1 } END { exit !found }'
}

# stop_pid PID GRACE_S: SIGTERM to PID's session, SIGKILL after GRACE_S;
# sets $stopped_status to its exit status.
stop_pid() {
  local pid=$1 grace=$2 end
  kill -TERM -- "-$pid" 2> /dev/null || kill -TERM "$pid" 2> /dev/null || true
  end=$((SECONDS + grace))
  while is_running "$pid" && ((SECONDS < end)); do sleep 0.1; done
  if is_running "$pid"; then
    say "pid $pid ignored SIGTERM for ${grace}s: SIGKILL"
    kill -KILL -- "-$pid" 2> /dev/null || kill -KILL "$pid" 2> /dev/null || true
  fi
  stopped_status=0
  wait "$pid" 2> /dev/null || stopped_status=$?
}

# wait_until SECONDS WHAT CMD...: CMD every 0.2 s until it succeeds; fails naming WHAT.
wait_until() {
  local limit=$1 what=$2 end
  shift 2
  end=$((SECONDS + limit))
  until "$@"; do
    ((SECONDS < end)) || fail "waited ${limit}s for $what"
    sleep 0.2
  done
}

# tcp_connects FROM ADDRESS PORT: a TCP connection from host FROM succeeds.
tcp_connects() {
  on "$1" timeout 2 bash -c 'exec 3<> "/dev/tcp/$0/$1"' "$2" "$3" 2> /dev/null
}

# Every site and the admin reach the server's address; in netns mode a
# listener on the server's own loopback is NOT reachable from a site (each
# host has its own stack, as separate machines do).
check_reachability() {
  local port=$((server_port + 101)) host
  start_on server "$work/logs/reachability.log" \
    timeout 30 openssl s_server -rev -nocert -accept "${host_address[server]}:$port"
  local listener=$last_pid
  wait_until 10 "a listener on the server" tcp_connects server "${host_address[server]}" "$port"
  for host in site-1 site-2 admin; do
    tcp_connects "$host" "${host_address[server]}" "$port" ||
      fail "$host (${host_address[$host]}) cannot reach the server at ${host_address[server]}:$port"
  done
  stop_pid "$listener" 5
  if [[ $network_mode == netns ]]; then
    start_on server "$work/logs/reachability-lo.log" \
      timeout 30 openssl s_server -rev -nocert -accept "127.0.0.1:$port"
    listener=$last_pid
    wait_until 10 "a listener on the server's loopback" tcp_connects server 127.0.0.1 "$port"
    if tcp_connects site-1 127.0.0.1 "$port"; then
      fail "site-1 reached the server's loopback: the namespaces are not separate hosts"
    fi
    stop_pid "$listener" 5
  fi
  say "reachability: site-1, site-2 and admin reach ${host_address[server]}:$port"
}

# Stops every process started (by pid, with its session), then anything left
# in this run's namespaces, and deletes the namespaces. Safe to call twice.
stop_everything() {
  local pid ns end
  for pid in "${started_pids[@]}"; do
    kill -TERM -- "-$pid" 2> /dev/null || kill -TERM "$pid" 2> /dev/null || true
  done
  end=$((SECONDS + 10))
  for pid in "${started_pids[@]}"; do
    while is_running "$pid" && ((SECONDS < end)); do sleep 0.1; done
    kill -KILL -- "-$pid" 2> /dev/null || kill -KILL "$pid" 2> /dev/null || true
    wait "$pid" 2> /dev/null || true
  done
  started_pids=()
  for ns in "${created_namespaces[@]}"; do
    # What is still in the namespace was started by this run (its name is this run's).
    for pid in $(ip netns pids "$ns" 2> /dev/null); do kill -KILL "$pid" 2> /dev/null || true; done
    ip netns del "$ns" 2> /dev/null || say "could not delete namespace $ns"
  done
  created_namespaces=()
}

# What earlier runs killed before their cleanup left (their pid is gone): their
# namespaces (once empty) and temp folders are deleted, so a SIGKILLed run
# leaks nothing for long.
delete_stale_leftovers() {
  local ns pid folder
  for folder in /tmp/flare-deploy-test.*.*; do
    pid=${folder#/tmp/flare-deploy-test.}
    pid=${pid%%.*}
    if [[ -d $folder && $pid =~ ^[0-9]+$ && ! -e /proc/$pid ]]; then
      rm -rf "$folder" && say "deleted stale temp folder $folder"
    fi
  done
  command -v ip > /dev/null || return 0
  for ns in $(ip netns list 2> /dev/null | awk '{print $1}' | grep '^flare-dt-[0-9]*-'); do
    pid=${ns#flare-dt-}
    pid=${pid%%-*}
    if [[ ! -e /proc/$pid && -z $(ip netns pids "$ns" 2> /dev/null) ]]; then
      ip netns del "$ns" 2> /dev/null && say "deleted stale namespace $ns"
    fi
  done
  return 0
}
