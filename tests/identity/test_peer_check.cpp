#include <doctest/doctest.h>

#include <ctime>

#include "certificate_reading.hpp"
#include "identity/certificate_authority.hpp"
#include "identity/peer_check.hpp"

using namespace flare::identity;

namespace {

const std::time_t kNow = std::time(nullptr);
constexpr std::time_t kDay = 24 * 3600;

struct Federation {
  CertificateAuthority ca = CertificateAuthority::create("example", validity_from(kNow, 3650));
  std::string issue(Role role, const std::string& name,
                    Validity validity = validity_from(kNow, 365)) {
    return ca.issue({{role, name}, "", validity}).certificate_pem;
  }
};

}  // namespace

TEST_CASE("a certificate from the project's CA is accepted with its role and name") {
  Federation federation;
  PeerVerifier verifier(federation.ca.certificate_pem());
  auto check = verifier.check(federation.issue(Role::site, "site-1"), Role::site);
  CHECK(check.accepted());
  CHECK(check.identity == Identity{Role::site, "site-1"});
}

TEST_CASE("a DER certificate is read as well as PEM") {
  Federation federation;
  auto pem = federation.issue(Role::admin, "admin@org.com");
  auto der = flare::testing::der_of(flare::testing::parse_pem(pem).get());
  auto check = PeerVerifier(federation.ca.certificate_pem()).check(der);
  CHECK(check.accepted());
  CHECK(check.identity == Identity{Role::admin, "admin@org.com"});
}

TEST_CASE("an expired certificate is refused as expired, naming when it expired") {
  Federation federation;
  auto old = federation.issue(Role::site, "site-1", {kNow - 30 * kDay, kNow - kDay});
  auto check = PeerVerifier(federation.ca.certificate_pem()).check(old, Role::site);
  CHECK(check.refusal == Refusal::expired);
  CHECK(check.reason.find("expired at") != std::string::npos);
}

TEST_CASE("a certificate not valid yet is refused as such") {
  Federation federation;
  auto future = federation.issue(Role::site, "site-1", {kNow + kDay, kNow + 30 * kDay});
  CHECK(PeerVerifier(federation.ca.certificate_pem()).check(future).refusal ==
        Refusal::not_yet_valid);
}

TEST_CASE("a certificate from another CA is refused, even one with the same project name") {
  Federation ours;
  Federation theirs;  // same subject "example root CA", another key
  auto check = PeerVerifier(ours.ca.certificate_pem()).check(theirs.issue(Role::site, "site-1"));
  CHECK(check.refusal == Refusal::other_ca);
  CHECK(check.reason.find("not by this project's CA") != std::string::npos);
}

TEST_CASE("a certificate altered after signing (site-1 made site-2) is refused as tampered") {
  Federation federation;
  auto der = flare::testing::der_of(
      flare::testing::parse_pem(federation.issue(Role::site, "site-1")).get());
  auto at = der.find("flare://site/site-1");
  REQUIRE(at != std::string::npos);
  der[at + std::string("flare://site/site-").size()] = '2';
  auto check = PeerVerifier(federation.ca.certificate_pem()).check(der);
  CHECK(check.refusal == Refusal::tampered);
  CHECK_FALSE(check.identity);
}

TEST_CASE("a certificate on the CA's revocation list is refused as revoked, others pass") {
  Federation federation;
  auto revoked = federation.issue(Role::site, "site-2");
  auto kept = federation.issue(Role::site, "site-1");
  RevokedCertificate entry{certificate_serial_hex(revoked), kNow};
  auto crl = federation.ca.revocation_list_pem({&entry, 1}, kNow);
  PeerVerifier verifier(federation.ca.certificate_pem(), crl);
  CHECK(verifier.check(revoked).refusal == Refusal::revoked);
  CHECK(verifier.check(kept).accepted());
}

TEST_CASE("a denied participant is refused as revoked whatever its certificate") {
  Federation federation;
  PeerVerifier verifier(federation.ca.certificate_pem(), {}, {"site-2"});
  auto check = verifier.check(federation.issue(Role::site, "site-2"));
  CHECK(check.refusal == Refusal::revoked);
  CHECK(check.reason.find("denied") != std::string::npos);
  PeerVerifier by_uri(federation.ca.certificate_pem(), {}, {"flare://site/site-2"});
  CHECK(by_uri.check(federation.issue(Role::site, "site-2")).refusal == Refusal::revoked);
  CHECK(by_uri.check(federation.issue(Role::site, "site-1")).accepted());
}

TEST_CASE("a revocation list signed by another CA is not taken") {
  Federation ours;
  Federation theirs;
  auto crl = theirs.ca.revocation_list_pem({}, kNow);
  CHECK_THROWS_WITH_AS(PeerVerifier(ours.ca.certificate_pem(), crl),
                       doctest::Contains("not signed by the CA"), IdentityError);
}

TEST_CASE("a valid certificate of another role is refused as the wrong role") {
  Federation federation;
  auto check = PeerVerifier(federation.ca.certificate_pem())
                   .check(federation.issue(Role::admin, "admin@org.com"), Role::site);
  CHECK(check.refusal == Refusal::wrong_role);
  CHECK(check.reason == "flare://admin/admin@org.com is an admin, expected a site");
}

TEST_CASE("the CA's own certificate shown as a peer carries no identity") {
  Federation federation;
  auto check = PeerVerifier(federation.ca.certificate_pem()).check(federation.ca.certificate_pem());
  CHECK(check.refusal == Refusal::no_identity);
}

TEST_CASE("bytes that are no certificate are refused as unreadable") {
  Federation federation;
  CHECK(PeerVerifier(federation.ca.certificate_pem()).check("hello").refusal ==
        Refusal::unreadable);
}

TEST_CASE("validity is checked at the time asked") {
  Federation federation;
  auto certificate = federation.issue(Role::site, "site-1", validity_from(kNow, 10));
  PeerVerifier verifier(federation.ca.certificate_pem());
  CHECK(verifier.check(certificate, Role::site, kNow + 5 * kDay).accepted());
  CHECK(verifier.check(certificate, Role::site, kNow + 11 * kDay).refusal == Refusal::expired);
}
