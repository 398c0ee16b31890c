#!/usr/bin/env bash
# A deployment on really different hosts: a network namespace each for the
# server, site-1, site-2 and the admin (own network stack, loopback, one eth0
# on a shared bridge, 10.213.47.0/24), provisioned with flare-provision, each
# host given only its own startup folder, each site its own generated data.
# Without root / ip netns / veth (e.g. in a container), the same scenario runs
# over 127.A.B.x loopback addresses instead, and says why.
#
#   scripts/deploy-netns-test.sh [--bin DIR] [--network auto|netns|loopback]
#                                [--phases plumbing|all] [--deadline SECONDS]
#
# --bin: flare-provision, flare-make-cifar (plumbing) and flare-server,
#   flare-client, flare-worker, flare-admin and the plugins (all); default build/bin.
# --phases plumbing: hosts, reachability, provisioning, data and mutual TLS
#   with the openssl CLI (s_server on the server host with its provisioned
#   certificate; s_client from the sites and admin, and from impostors: another
#   CA's certificate, an expired one, a revoked one, none).
# --phases all (default): then flare-server, a flare-client --startup daemon
#   per site and flare-admin: a job submitted and checked (list, metrics,
#   download, audit), and impostors refused by the real server (tests/deploy/
#   impostors.sh): a site speaking for another, another CA, expired, revoked,
#   no certificate.
# --deadline: the whole run's bound (default 240 s); past it the run fails,
#   once the step under way ends (each is bounded: 30 s, flare-admin 120 s).
# FLARE_DEPLOY_KEEP=1 keeps the temp folder (logs, workspaces) for a look.
# Every process it starts is stopped by pid (with its session), its namespaces
# and temp folder deleted, on success, failure, Ctrl-C or the deadline.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$root/build/bin"
network=auto
phases=all
deadline=240
while (($#)); do
  case $1 in
    --bin) bin=$2; shift 2 ;;
    --network) network=$2; shift 2 ;;
    --phases) phases=$2; shift 2 ;;
    --deadline) deadline=$2; shift 2 ;;
    *) echo "usage: $0 [--bin DIR] [--network auto|netns|loopback] [--phases plumbing|all]" \
         "[--deadline SECONDS]" >&2; exit 2 ;;
  esac
done
[[ $network =~ ^(auto|netns|loopback)$ && $phases =~ ^(plumbing|all)$ ]] ||
  { echo "$0: --network auto|netns|loopback, --phases plumbing|all" >&2; exit 2; }

started=$SECONDS
say() { echo "[deploy-test +$((SECONDS - started))s] $*"; }
fail() { say "FAILED: $*"; exit 1; }

work=$(mktemp -d "/tmp/flare-deploy-test.$$.XXXXXX")  # $$: see delete_stale_leftovers
mkdir -p "$work/logs"
for part in hosts certificates tls_handshakes deployment impostors; do
  # shellcheck source=/dev/null
  source "$root/tests/deploy/$part.sh"
done

finish() {
  local status=$?
  trap - EXIT INT TERM
  set +e  # cleanup goes on past what is already gone
  [[ -n ${watchdog_pid:-} ]] && kill -TERM -- "-$watchdog_pid" 2> /dev/null
  stop_everything
  if ((status != 0)); then
    # The end of each log, for the reader of a failed run.
    for log in "$work"/logs/*.log; do
      [[ -s $log ]] && { echo "== $(basename "$log")"; tail -15 "$log"; }
    done
  fi
  if [[ ${FLARE_DEPLOY_KEEP:-0} == 1 ]]; then say "kept $work"; else rm -rf "$work"; fi
  exit "$status"
}
trap finish EXIT
trap 'fail "interrupted"' INT
trap 'fail "stopped: past the deadline of ${deadline}s (or SIGTERM)"' TERM
# Every wait below is bounded; this bounds the whole (ctest would SIGKILL: no cleanup).
setsid bash -c 'sleep "$1"; kill -TERM "$2"' deadline "$deadline" $$ < /dev/null > /dev/null 2>&1 &
watchdog_pid=$!

for program in flare-provision flare-make-cifar; do
  [[ -x $bin/$program ]] || fail "$bin/$program is missing: build it (cmake --build build --target $program)"
done
delete_stale_leftovers
set_up_hosts "$network"
check_reachability
provision_project

for site in site-1 site-2; do
  seed=${site#site-}
  on "$site" timeout 30 "$bin/flare-make-cifar" --out "$work/hosts/$site/data" --train 320 --test 160 \
    --seed "$seed" > "$work/logs/make-cifar-$site.log" 2>&1 || fail "flare-make-cifar for $site"
  [[ -s $work/hosts/$site/data/data_batch_1.bin && -s $work/hosts/$site/data/test_batch.bin ]] ||
    fail "flare-make-cifar wrote no batches for $site"
done
say "data: 320 generated training images per site, each its own (seeds 1, 2)"

check_tls_handshakes
if [[ $phases == all ]]; then
  run_deployment
  check_impostors
fi
say "passed ($network_mode, phases: $phases)"
