#include <doctest/doctest.h>
#include <openssl/ec.h>

#include <ctime>

#include "certificate_reading.hpp"
#include "identity/certificate_authority.hpp"

using namespace flare::identity;
using flare::testing::alt_names;
using flare::testing::common_name;
using flare::testing::parse_pem;

namespace {

const std::time_t kNow = std::time(nullptr);

CertificateAuthority test_ca() {
  return CertificateAuthority::create("example", validity_from(kNow, 3650));
}

IssuedCertificate issue(const CertificateAuthority& ca, Role role, const std::string& name) {
  return ca.issue({{role, name}, "org-a", validity_from(kNow, 365)});
}

}  // namespace

TEST_CASE("a site's certificate names it in CN and in a flare://site/ URI, for client auth only") {
  auto ca = test_ca();
  auto certificate = parse_pem(issue(ca, Role::site, "site-1").certificate_pem);
  REQUIRE(certificate);
  CHECK(X509_get_version(certificate.get()) == X509_VERSION_3);
  CHECK(common_name(certificate.get()) == "site-1");
  CHECK(alt_names(certificate.get()) == std::vector<std::string>{"URI:flare://site/site-1"});
  CHECK((X509_get_extension_flags(certificate.get()) & EXFLAG_BCONS) != 0);
  CHECK_FALSE(X509_check_ca(certificate.get()));
  CHECK(X509_get_key_usage(certificate.get()) == KU_DIGITAL_SIGNATURE);
  CHECK(X509_get_extended_key_usage(certificate.get()) == XKU_SSL_CLIENT);
}

TEST_CASE("the server's certificate carries its DNS name or IP address and is for server auth") {
  auto ca = test_ca();
  auto by_name = parse_pem(issue(ca, Role::server, "fl.example.com").certificate_pem);
  CHECK(alt_names(by_name.get()) ==
        std::vector<std::string>{"URI:flare://server/fl.example.com", "DNS:fl.example.com"});
  CHECK(X509_get_extended_key_usage(by_name.get()) == XKU_SSL_SERVER);
  CHECK(X509_check_host(by_name.get(), "fl.example.com", 0, 0, nullptr) == 1);
  auto by_address = parse_pem(issue(ca, Role::server, "10.0.0.1").certificate_pem);
  CHECK(X509_check_ip_asc(by_address.get(), "10.0.0.1", 0) == 1);
}

TEST_CASE("an admin's certificate names the e-mail address in a flare://admin/ URI and as e-mail") {
  auto ca = test_ca();
  auto certificate = parse_pem(issue(ca, Role::admin, "admin@org.com").certificate_pem);
  CHECK(alt_names(certificate.get()) ==
        std::vector<std::string>{"URI:flare://admin/admin@org.com", "email:admin@org.com"});
  CHECK(X509_get_extended_key_usage(certificate.get()) == XKU_SSL_CLIENT);
}

TEST_CASE("keys are ECDSA P-256 and serial numbers are random 20-octet numbers") {
  auto ca = test_ca();
  auto first = issue(ca, Role::site, "site-1");
  auto second = issue(ca, Role::site, "site-1");
  auto certificate = parse_pem(first.certificate_pem);
  EVP_PKEY* key = X509_get0_pubkey(certificate.get());
  CHECK(EVP_PKEY_get_base_id(key) == EVP_PKEY_EC);
  char curve[64] = {};
  EVP_PKEY_get_utf8_string_param(key, "group", curve, sizeof curve, nullptr);
  CHECK(std::string(curve) == "prime256v1");
  CHECK(certificate_serial_hex(first.certificate_pem).size() == 40);
  CHECK(certificate_serial_hex(first.certificate_pem) !=
        certificate_serial_hex(second.certificate_pem));
  CHECK(first.private_key_pem != second.private_key_pem);
}

TEST_CASE(
    "the CA is a CA for one level, valid for the days asked, and reloads from its PEM files") {
  auto ca = test_ca();
  auto certificate = parse_pem(ca.certificate_pem());
  CHECK(X509_check_ca(certificate.get()) == 1);
  CHECK(X509_get_pathlen(certificate.get()) == 0);
  CHECK(X509_get_key_usage(certificate.get()) == (KU_KEY_CERT_SIGN | KU_CRL_SIGN));
  int days = 0, seconds = 0;
  ASN1_TIME_diff(&days, &seconds, X509_get0_notBefore(certificate.get()),
                 X509_get0_notAfter(certificate.get()));
  CHECK(days == 3650);
  auto reloaded = CertificateAuthority::load(ca.certificate_pem(), ca.private_key_pem());
  auto issued = parse_pem(issue(reloaded, Role::site, "site-2").certificate_pem);
  CHECK(X509_verify(issued.get(), X509_get0_pubkey(certificate.get())) == 1);
}

TEST_CASE("loading a CA refuses a key that is not the certificate's") {
  auto ca = test_ca();
  auto other = test_ca();
  CHECK_THROWS_WITH_AS(CertificateAuthority::load(ca.certificate_pem(), other.private_key_pem()),
                       doctest::Contains("does not belong"), IdentityError);
}

TEST_CASE("issuing refuses a name that is not valid for its role") {
  auto ca = test_ca();
  CHECK_THROWS_WITH_AS(issue(ca, Role::site, "site 1,URI:flare://server/x"),
                       doctest::Contains("letters, digits"), IdentityError);
  CHECK_THROWS_AS(issue(ca, Role::admin, "not-an-email"), IdentityError);
  CHECK_THROWS_AS(issue(ca, Role::server, "-bad-.example"), IdentityError);
}

TEST_CASE("identity URIs round-trip and anything else is no identity") {
  CHECK(parse_identity_uri("flare://site/site-1") == Identity{Role::site, "site-1"});
  CHECK(parse_identity_uri("flare://admin/a@b.org") == Identity{Role::admin, "a@b.org"});
  CHECK(identity_uri({Role::server, "10.0.0.1"}) == "flare://server/10.0.0.1");
  CHECK_FALSE(parse_identity_uri("flare://root/site-1"));
  CHECK_FALSE(parse_identity_uri("https://site/site-1"));
  CHECK_FALSE(parse_identity_uri("flare://site/site-1/../x"));
  CHECK_FALSE(parse_identity_uri("flare://site"));
}
