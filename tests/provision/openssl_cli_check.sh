#!/usr/bin/env bash
# flare-provision's output checked by an independent reader, the openssl CLI:
# the chain verifies, names/SANs/extensions are what the docs say, permissions
# are owner-only, revocation shows in the CRL, a bad project file exits 2.
# Usage: openssl_cli_check.sh <flare-provision>
set -euo pipefail
provision=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

cat > "$work/project.toml" <<'TOML'
[project]
name = "clinic"

[server]
name = "fl.example.com"

[sites.site-1]
[sites.site-2]

[admins."admin@org.com"]
role = "project_admin"
TOML
"$provision" "$work/project.toml" --output "$work/out" > /dev/null
root=$work/out/clinic
ca=$root/ca/ca.crt

for name in fl.example.com site-1 site-2 admin@org.com; do
  cert=$root/$name/startup/participant.crt
  openssl verify -CAfile "$ca" -crl_check -CRLfile "$root/ca/crl.pem" "$cert" > /dev/null \
    || fail "$name: openssl verify refused $cert"
  [[ $(stat -c %a "$root/$name/startup/participant.key") == 600 ]] || fail "$name: key not 0600"
  [[ $(stat -c %a "$root/$name/startup") == 700 ]] || fail "$name: startup folder not 0700"
  # The key belongs to the certificate.
  [[ $(openssl pkey -in "$root/$name/startup/participant.key" -pubout) == \
     $(openssl x509 -in "$cert" -noout -pubkey) ]] || fail "$name: key is not the certificate's"
done
[[ $(stat -c %a "$root/ca/ca.key") == 600 ]] || fail "the CA key is not 0600"
[[ -z $(find "$root" -name ca.key -not -path "$root/ca/*") ]] || fail "a CA key outside ca/"

text=$(openssl x509 -in "$root/site-1/startup/participant.crt" -noout -text)
grep -q "Subject: .*CN = site-1" <<<"$text" || fail "site-1: CN"
grep -q "URI:flare://site/site-1" <<<"$text" || fail "site-1: SAN URI"
grep -q "CA:FALSE" <<<"$text" || fail "site-1: basicConstraints"
grep -q "Digital Signature" <<<"$text" || fail "site-1: keyUsage"
grep -q "TLS Web Client Authentication" <<<"$text" || fail "site-1: clientAuth"
grep -q "ASN1 OID: prime256v1" <<<"$text" || fail "site-1: P-256 key"
text=$(openssl x509 -in "$root/fl.example.com/startup/participant.crt" -noout -text)
grep -q "DNS:fl.example.com" <<<"$text" || fail "server: DNS SAN"
grep -q "URI:flare://server/fl.example.com" <<<"$text" || fail "server: SAN URI"
grep -q "TLS Web Server Authentication" <<<"$text" || fail "server: serverAuth"
openssl x509 -in "$root/fl.example.com/startup/participant.crt" -noout \
  -checkhost fl.example.com | grep -q "does match" || fail "server: host name check"
grep -q "URI:flare://admin/admin@org.com" \
  <<<"$(openssl x509 -in "$root/admin@org.com/startup/participant.crt" -noout -text)" \
  || fail "admin: SAN URI"

# Revocation: the CRL verifies under the CA and lists site-2's serial; openssl refuses site-2.
"$provision" "$work/project.toml" --output "$work/out" --revoke site-2 > /dev/null
openssl crl -in "$root/ca/crl.pem" -CAfile "$ca" -noout 2>&1 | grep -q "verify OK" \
  || fail "the CRL does not verify under the CA"
serial=$(openssl x509 -in "$root/site-2/startup/participant.crt" -noout -serial | cut -d= -f2)
openssl crl -in "$root/ca/crl.pem" -noout -text | grep -q "Serial Number: $serial" \
  || fail "the CRL does not list site-2's serial $serial"
if openssl verify -CAfile "$ca" -crl_check -CRLfile "$root/ca/crl.pem" \
     "$root/site-2/startup/participant.crt" > "$work/verify.txt" 2>&1; then
  fail "openssl verify accepted revoked site-2"
fi
grep -q "certificate revoked" "$work/verify.txt" || fail "site-2 refused, but not as revoked"

# A bad project file: exit 2, file:line: key, nothing written.
printf '[project]\nname = "x"\n[server]\nname = "h"\nport = 0\n[sites.a]\n' > "$work/bad.toml"
set +e
message=$("$provision" "$work/bad.toml" --output "$work/bad-out" 2>&1)
code=$?
set -e
[[ $code == 2 ]] || fail "a bad project file exited $code, expected 2"
grep -q "bad.toml:5: server.port: expected an integer from 1 to 65535" <<<"$message" \
  || fail "unexpected message: $message"
[[ ! -e $work/bad-out ]] || fail "a bad project file wrote $work/bad-out"
# A renamed server is refused with exit 2, nothing written.
before=$(find "$root" -type f -exec sha256sum {} + | sort)
sed 's/fl.example.com/fl2.example.com/' "$work/project.toml" > "$work/renamed.toml"
set +e
message=$("$provision" "$work/renamed.toml" --output "$work/out" 2>&1)
code=$?
set -e
[[ $code == 2 ]] || fail "a renamed server exited $code, expected 2"
grep -q "refused: the server was provisioned as fl.example.com" <<<"$message" \
  || fail "unexpected message: $message"
[[ $(find "$root" -type f -exec sha256sum {} + | sort) == "$before" ]] \
  || fail "a refused run changed files"
echo "openssl CLI check: OK"
