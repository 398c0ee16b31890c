# The operator's side: the project provisioned with flare-provision, each
# participant's startup folder handed to its host, and the certificates the
# impostors show (another project's, an expired one). Sourced by
# scripts/deploy-netns-test.sh; uses $bin, $work, host_address, server_port.

admin_name="admin@netns.test"

# write_project_file FILE PROJECT: server = the server host's address.
write_project_file() {
  cat > "$1" << TOML
[project]
name = "$2"

[server]
name = "${host_address[server]}"
port = $server_port

[sites.site-1]
[sites.site-2]

[admins."$admin_name"]
role = "project_admin"
TOML
}

# The project "netns" in $work/operator/netns; each host gets a copy of its own
# startup folder only, in $work/hosts/<host>/startup (the CA key stays with the operator).
provision_project() {
  mkdir -p "$work/operator"
  write_project_file "$work/operator/project.toml" netns
  timeout 30 "$bin/flare-provision" "$work/operator/project.toml" --output "$work/operator" \
    > "$work/logs/provision.log" 2>&1 || fail "flare-provision (log: provision.log)"
  project="$work/operator/netns"
  declare -gA participant=([server]=${host_address[server]} [site-1]=site-1 [site-2]=site-2
                           [admin]=$admin_name)
  local host
  for host in "${hosts[@]}"; do
    mkdir -p "$work/hosts/$host"
    cp -a "$project/${participant[$host]}/startup" "$work/hosts/$host/startup"
  done
  [[ -z $(find "$work/hosts" -name ca.key) ]] || fail "a CA key was handed to a host"
  say "provisioned: server ${participant[server]}:$server_port, site-1, site-2, $admin_name"
}

startup_of() { echo "$work/hosts/$1/startup"; }

# A second project's CA, with the same participant names: its site-1 and admin
# folders are well-formed, but not issued by this project's CA.
provision_other_project() {
  mkdir -p "$work/other"
  write_project_file "$work/other/project.toml" other
  timeout 30 "$bin/flare-provision" "$work/other/project.toml" --output "$work/other" \
    > "$work/logs/provision-other.log" 2>&1 || fail "flare-provision of the other project"
  other_project="$work/other/other"
}

# issue_expired_certificate NAME ROLE OUT: a copy of NAME's startup folder in OUT
# whose certificate (same key, same names) was issued by the project's CA and
# expired in 2020. flare-provision issues nothing back-dated: openssl ca does.
issue_expired_certificate() {
  local name=$1 role=$2 out=$3 ca_dir="$work/expired-ca"
  local usage=clientAuth
  [[ $role == server ]] && usage=serverAuth
  mkdir -p "$ca_dir"
  : > "$ca_dir/index.txt"
  echo 01 > "$ca_dir/serial"  # unused (-rand_serial), but openssl ca reads it
  cat > "$ca_dir/ca.cnf" << CNF
[ca]
default_ca = project
[project]
database = $ca_dir/index.txt
serial = $ca_dir/serial
new_certs_dir = $ca_dir
default_md = sha256
policy = names
[names]
commonName = supplied
organizationalUnitName = optional
[participant]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = $usage
subjectAltName = URI:flare://$role/$name
CNF
  cp -a "$project/$name/startup" "$out"
  openssl req -new -key "$out/participant.key" -subj "/OU=$role/CN=$name" \
    -out "$ca_dir/request.csr" 2> "$work/logs/expired-ca.log" &&
    openssl ca -batch -config "$ca_dir/ca.cnf" -extensions participant -rand_serial -notext \
      -cert "$project/ca/ca.crt" -keyfile "$project/ca/ca.key" -in "$ca_dir/request.csr" \
      -startdate 20200101000000Z -enddate 20200102000000Z -out "$out/participant.crt" \
      >> "$work/logs/expired-ca.log" 2>&1 || fail "openssl ca: an expired certificate (expired-ca.log)"
  local verdict
  verdict=$(openssl verify -CAfile "$project/ca/ca.crt" "$out/participant.crt" 2>&1 || true)
  grep -q "certificate has expired" <<< "$verdict" || fail "the back-dated certificate: $verdict"
}

# Revokes NAME with flare-provision; the server host gets the new crl.pem and local.toml.
revoke_participant() {
  local name=$1
  timeout 30 "$bin/flare-provision" "$work/operator/project.toml" --output "$work/operator" --revoke "$name" \
    > "$work/logs/provision-revoke.log" 2>&1 || fail "flare-provision --revoke $name"
  cp "$project/${participant[server]}/startup/crl.pem" \
    "$project/${participant[server]}/startup/local.toml" "$(startup_of server)/"
}
