# Impostors against the running deployment (deployment.sh started it): each
# is refused, and the server's audit says so with its reason (the reasons are
# server/peer_admission.cpp's and RpcService::admit's). Sourced by
# scripts/deploy-netns-test.sh. CONTRACT marks what the contract leaves open.

# expect_audit FILE WHAT CONDITIONS...: such a line appears within 30 s.
expect_audit() {
  local file=$1 what=$2
  shift 2
  wait_until 30 "$what in $file" jsonl_has "$file" "$@"
}

# site-1's own certificate, its per-job client claiming to be site-2 on a
# running job's port: the handshake passes (the certificate is good), the
# request is refused by identity.
impostor_speaks_for_another_site() {
  write_job "$work/hosts/admin/jobs/long.toml" 50
  submit_job "$work/hosts/admin/jobs/long.toml"
  local id=$job_id port="" job_file
  # CONTRACT: status prints the running job's port as "port: N" / "port = N" / "port N".
  wait_until 60 "job $id running with a port" job_port_known "$id"
  port=$running_port
  job_file="$(site_workspace site-1)/jobs/$id/job.toml"
  wait_until 60 "site-1's copy of job $id" test -s "$job_file"
  mkdir -p "$work/impostor/logs" "$work/impostor/work"
  local status=0
  on site-1 timeout 60 "$bin/flare-client" --job "$job_file" --site site-2 \
    --server "${host_address[server]}:$port" --tls-dir "$(startup_of site-1)" \
    --log-dir "$work/impostor/logs" --work-dir "$work/impostor/work" \
    > "$work/logs/impostor-site-2.log" 2>&1 || status=$?
  ((status != 0 && status != 124)) ||
    fail "site-1 speaking for site-2: flare-client exited $status, expected a refusal"
  expect_audit "$(job_audit "$id")" "site-1's claim to be site-2" event=request_refused \
    identity=site/site-1 claimed_site=site-2 "reason~may not speak for site 'site-2'" \
    "peer~$(peer_pattern_of site-1)"

  admin abort "$id"
  ((admin_status == 0)) || fail "flare-admin abort $id: exit $admin_status: $admin_said"
  admin wait "$id" --timeout 60
  ((admin_status == 1)) || fail "flare-admin wait on aborted job $id: exit $admin_status"
  admin status "$id"
  grep -qw aborted <<< "$admin_out" || fail "job $id not aborted: $admin_said"
  say "impostor refused: site-1's certificate speaking for site-2 (job $id, then aborted)"
}

job_port_known() {
  admin status "$1"
  grep -qw running <<< "$admin_out" || return 1
  running_port=$(grep -oiE 'port[" :=]+[0-9]+' <<< "$admin_out" | grep -oE '[0-9]+$' | head -1)
  [[ -n $running_port ]]
}

# An admin folder of another project (its own CA, the same names), trusting
# this project's CA for the server (public: an impostor has it), so that the
# handshake reaches the server's check of the client.
# present_certificate NAME FOLDER: a TLS client on the admin host showing
# FOLDER's certificate to the server's main port (trusting this project's CA
# for the server, and offering ALPN h2 as gRPC does), so the server's own
# check is what refuses it. flare-admin would not even try: it checks its
# startup folder first (expect_admin_refuses_folder).
present_certificate() {
  on admin timeout 10 openssl s_client -connect "${host_address[server]}:$server_port" -alpn h2 \
    -cert "$2/participant.crt" -key "$2/participant.key" -CAfile "$project/ca/ca.crt" \
    < /dev/null > "$work/logs/impostor-$1.log" 2>&1 || true
}

# flare-admin refuses to use a startup folder whose certificate is not good
# (exit 2, naming why) before it connects.
expect_admin_refuses_folder() {
  ((admin_status == 2)) || fail "$1: flare-admin exited $admin_status, expected 2: $admin_said"
  [[ $admin_said == *"$2"* ]] || fail "$1: flare-admin did not say '$2': $admin_said"
}

impostor_other_ca() {
  [[ -n ${other_project:-} ]] || provision_other_project
  cp -a "$other_project/$admin_name/startup" "$work/other-admin"
  cp "$project/ca/ca.crt" "$work/other-admin/ca.crt"
  admin_with "$work/other-admin" list
  expect_admin_refuses_folder "another CA's admin" "other_ca"
  present_certificate other-ca "$work/other-admin"
  expect_audit "$(server_audit)" "another CA's certificate refused" event=handshake_refused \
    refusal=other_ca "reason~not by this project's CA"
  say "impostor refused: another CA's certificate"
}

# The admin's certificate, issued by the project's CA, expired.
impostor_expired() {
  issue_expired_certificate "$admin_name" admin "$work/expired-admin"
  admin_with "$work/expired-admin" list
  expect_admin_refuses_folder "an expired certificate" "expired"
  present_certificate expired "$work/expired-admin"
  expect_audit "$(server_audit)" "the expired certificate refused" event=handshake_refused \
    refusal=expired "reason~expired at"
  say "impostor refused: an expired certificate"
}

# A TLS client with no certificate on the server's main port.
impostor_no_certificate() {
  # ALPN h2, as a gRPC client offers, so only the missing certificate is wrong.
  on admin timeout 10 openssl s_client -connect "${host_address[server]}:$server_port" -alpn h2 \
    -CAfile "$(startup_of admin)/ca.crt" < /dev/null > "$work/logs/impostor-no-cert.log" 2>&1 || true
  expect_audit "$(server_audit)" "the client without a certificate refused" \
    event=handshake_refused refusal=no_certificate "reason~no client certificate"
  say "impostor refused: no certificate"
}

# site-2 revoked by the operator: the new crl.pem and local.toml go to the
# server, which restarts; site-2's daemon (still polling) is refused from then on.
impostor_revoked() {
  revoke_participant site-2
  stop_pid "$server_pid" 30
  ((stopped_status == 0)) || fail "flare-server exited $stopped_status on SIGTERM"
  start_server
  # The CRL is checked before denied_participants.
  expect_audit "$(server_audit)" "revoked site-2 refused" event=handshake_refused \
    "certificate~site-2" refusal=revoked "reason~revocation list"
  admin list
  ((admin_status == 0)) || fail "after the restart, flare-admin list: exit $admin_status: $admin_said"
  say "impostor refused: revoked site-2 (server restarted with the new CRL)"
}

# The real server negotiates TLS 1.3 with a good certificate (gRPC 1.51 has
# no setting that refuses 1.2: both ends prefer 1.3, docs/architecture.md).
check_tls13() {
  present_certificate good-admin "$(startup_of admin)"
  grep -q "Protocol: TLSv1.3\|Protocol  : TLSv1.3\|New, TLSv1.3" "$work/logs/impostor-good-admin.log" ||
    fail "the server's main port did not negotiate TLS 1.3: $(head -c 600 "$work/logs/impostor-good-admin.log")"
  say "the server's main port negotiates TLS 1.3"
}

check_impostors() {
  check_tls13
  impostor_speaks_for_another_site
  impostor_other_ca
  impostor_expired
  impostor_no_certificate
  impostor_revoked
  stop_deployment
}
