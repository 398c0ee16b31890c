# The provisioned certificates across the hosts, checked at the TLS level with
# the openssl CLI alone: s_server on the server host (its provisioned
# certificate, the project CA, the CRL, a client certificate required) and
# s_client from a site or the admin. Needs none of flare-server/-client/-admin,
# and shows the refusals the server must make are the certificates' own (other
# CA, expired, revoked, none). Sourced by scripts/deploy-netns-test.sh.

# tls_handshake CASE FROM CRL [s_client options...]: one connection from host
# FROM; the server's side is left in $work/logs/tls-CASE.log, the client's in
# tls-CASE.client.log.
tls_handshake() {
  local case=$1 from=$2 crl=$3 s
  shift 3
  s=$(startup_of server)
  local port=$((server_port + 102)) log="$work/logs/tls-$case.log"
  start_on server "$log" timeout 30 openssl s_server -rev -tls1_3 -naccept 1 \
    -accept "${host_address[server]}:$port" -cert "$s/participant.crt" -key "$s/participant.key" \
    -CAfile "$s/ca.crt" -Verify 1 -verify_return_error -crl_check -CRL "$crl"
  local server_pid=$last_pid
  wait_until 10 "openssl s_server on ${host_address[server]}:$port" \
    listening server "${host_address[server]}" "$port"
  # The client checks the server: the project's CA, and the address the server was provisioned as.
  # A line the server echoes reversed, then CLOSE (s_server -rev ends the connection).
  printf 'hello-%s\nCLOSE\n' "$case" |
    on "$from" timeout 10 openssl s_client -ign_eof -connect "${host_address[server]}:$port" \
    -CAfile "$(startup_of "$from")/ca.crt" -verify_return_error -verify_ip "${host_address[server]}" \
    "$@" > "$log.client" 2>&1 || true
  wait_until 10 "openssl s_server to end its one connection" not_running "$server_pid"
  stop_pid "$server_pid" 1
}

# expect_tls_admitted CASE NAME: the server admitted NAME's certificate, the client got its echo.
expect_tls_admitted() {
  local log="$work/logs/tls-$1.log"
  grep -q "CONNECTION ESTABLISHED" "$log" || fail "TLS $1: refused: $(grep -i error "$log" | head -3)"
  grep -q "Peer certificate: .*CN = $2\$" "$log" || fail "TLS $1: the peer was not $2"
  grep -q "$(rev <<< "hello-$1")" "$log.client" || fail "TLS $1: no answer through the channel"
}

# expect_tls_refused CASE REASON: the server refused the handshake, for REASON.
expect_tls_refused() {
  local log="$work/logs/tls-$1.log"
  ! grep -q "CONNECTION ESTABLISHED" "$log" || fail "TLS $1: admitted, expected a refusal ($2)"
  grep -q "$2" "$log" || fail "TLS $1: refused, but not for '$2': $(grep -i error "$log" | head -3)"
}

check_tls_handshakes() {
  local crl s1 revoked_crl
  crl="$(startup_of server)/crl.pem"
  s1=$(startup_of site-1)
  for host in site-1 site-2 admin; do
    local s
    s=$(startup_of "$host")
    tls_handshake "$host" "$host" "$crl" -cert "$s/participant.crt" -key "$s/participant.key"
    expect_tls_admitted "$host" "${participant[$host]}"
  done

  provision_other_project
  tls_handshake other-ca site-1 "$crl" \
    -cert "$other_project/site-1/startup/participant.crt" \
    -key "$other_project/site-1/startup/participant.key"
  expect_tls_refused other-ca "unable to get local issuer certificate"

  issue_expired_certificate site-1 site "$work/expired-site-1"
  tls_handshake expired site-1 "$crl" \
    -cert "$work/expired-site-1/participant.crt" -key "$work/expired-site-1/participant.key"
  expect_tls_refused expired "certificate has expired"

  # Revoked, in a copy of the operator's folder: the deployment phase revokes for real later.
  cp -a "$work/operator" "$work/operator-copy"
  timeout 30 "$bin/flare-provision" "$work/operator-copy/project.toml" --output "$work/operator-copy" \
    --revoke site-2 > "$work/logs/provision-copy-revoke.log" 2>&1 || fail "flare-provision --revoke"
  revoked_crl="$work/operator-copy/netns/ca/crl.pem"
  local s2
  s2=$(startup_of site-2)
  tls_handshake revoked site-2 "$revoked_crl" -cert "$s2/participant.crt" -key "$s2/participant.key"
  expect_tls_refused revoked "certificate revoked"
  tls_handshake not-revoked site-1 "$revoked_crl" -cert "$s1/participant.crt" -key "$s1/participant.key"
  expect_tls_admitted not-revoked site-1

  tls_handshake no-certificate admin "$crl"
  expect_tls_refused no-certificate "peer did not return a certificate"
  say "TLS: the provisioned certificates are admitted across hosts; another CA's, an expired," \
    "a revoked one and none are refused"
}
