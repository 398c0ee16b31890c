#!/usr/bin/env bash
# deploy/systemd's units as systemd reads them, offline (no running systemd
# needed): `systemd-analyze verify` must print nothing (it exits 0 on unknown
# keys and bad values, printing them), `systemd-analyze security` must count
# the hardening the units promise as set, and the stop and restart settings
# must be what lets the programs stop their jobs. The units name
# /opt/flare/bin/...; verify wants existing executables, so the prefix is
# swapped for a temporary one holding stand-ins.
# Usage: systemd_units_check.sh DEPLOY_SYSTEMD_DIR      (exit 77: skipped)
set -euo pipefail
units_dir="$1"
if ! command -v systemd-analyze >/dev/null; then
  echo "skipped: systemd-analyze is not installed (Debian package systemd)"
  exit 77
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/prefix/bin"
for program in flare-server flare-client; do
  printf '#!/bin/sh\n' > "$tmp/prefix/bin/$program"
  chmod +x "$tmp/prefix/bin/$program"
done
for unit in flare-server.service flare-client@.service; do
  sed "s|/opt/flare/|$tmp/prefix/|g" "$units_dir/$unit" > "$tmp/$unit"
done
ln -s flare-client@.service "$tmp/flare-client@site-1.service"
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

cd "$tmp"
for unit in flare-server.service flare-client@site-1.service; do
  if ! out="$(systemd-analyze verify --man=no "./$unit" 2>&1)" || [ -n "$out" ]; then
    fail "systemd-analyze verify $unit:"$'\n'"$out"
  fi
  # What systemd itself counts as set (not a grep of the file).
  security="$(systemd-analyze security --offline=yes --json=short "./$unit")"
  for field in UserOrDynamicUser NoNewPrivileges ProtectSystem PrivateTmp UMask \
      RestrictSUIDSGID ProtectKernelModules ProtectKernelTunables ProtectControlGroups \
      CapabilityBoundingSet_CAP_SYS_ADMIN AmbientCapabilities; do
    if ! printf '%s' "$security" | /usr/bin/python3 -c '
import json, sys
field = sys.argv[1]
checks = [c for c in json.load(sys.stdin) if c["json_field"] == field]
sys.exit(0 if checks and all(c["set"] for c in checks) else 1)' "$field"; then
      fail "$unit: systemd-analyze security does not count $field as set"
    fi
  done
done

# key=value of a unit's [Service] section, the last one winning as in systemd.
value_of() { sed -n "s/^$2=//p" "$1" | tail -n 1; }
for unit in flare-server.service flare-client@.service; do
  [ "$(value_of "$unit" KillMode)" = mixed ] ||
    fail "$unit: KillMode is not mixed (SIGTERM must reach the program alone, which stops its jobs)"
  [ "$(value_of "$unit" Restart)" = on-failure ] || fail "$unit: Restart is not on-failure"
  [ -n "$(value_of "$unit" TimeoutStopSec)" ] || fail "$unit: no TimeoutStopSec"
  [ "$(value_of "$unit" UMask)" = 0077 ] || fail "$unit: UMask is not 0077"
done
[ "$(value_of flare-server.service ReadWritePaths)" = /var/lib/flare/server/workspace ] ||
  fail "flare-server.service: ReadWritePaths is not its workspace"
[ "$(value_of flare-client@.service ReadWritePaths)" = '/var/lib/flare/%i/workspace' ] ||
  fail "flare-client@.service: ReadWritePaths is not its workspace"
grep -q "^ExecStart=$tmp/prefix/bin/flare-server --startup /var/lib/flare/server/startup " flare-server.service ||
  fail "flare-server.service: ExecStart is not flare-server --startup DIR"
grep -q "^ExecStart=$tmp/prefix/bin/flare-client --startup /var/lib/flare/%i/startup " flare-client@.service ||
  fail "flare-client@.service: ExecStart is not flare-client --startup DIR"

[ "$failures" -eq 0 ] || exit 1
echo "systemd units: verified, hardening counted by systemd-analyze security, stop/restart settings checked"
