#include "identity/certificate_authority.hpp"

#include <openssl/bn.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "identity/openssl_handles.hpp"

namespace flare::identity {
namespace {

using detail::Certificate;
using detail::fail_openssl;
using detail::PrivateKey;

using Name = std::unique_ptr<X509_NAME, detail::Freer<X509_NAME_free>>;
using Number = std::unique_ptr<BIGNUM, detail::Freer<BN_free>>;
using Time = std::unique_ptr<ASN1_TIME, detail::Freer<ASN1_TIME_free>>;
using Integer = std::unique_ptr<ASN1_INTEGER, detail::Freer<ASN1_INTEGER_free>>;

Name subject_name(std::string_view common_name, std::string_view organisation,
                  std::string_view unit) {
  Name name(X509_NAME_new());
  auto add = [&](const char* field, std::string_view value) {
    if (value.empty()) return;
    if (X509_NAME_add_entry_by_txt(name.get(), field, MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(value.data()),
                                   static_cast<int>(value.size()), -1, 0) != 1) {
      fail_openssl("cannot set the subject's " + std::string(field));
    }
  };
  add("O", organisation);
  add("OU", unit);
  add("CN", common_name);
  return name;
}

// 159 random bits: positive, unique without a serial file (RFC 5280 allows 20 octets).
void set_random_serial(X509* certificate) {
  unsigned char bytes[20];
  if (RAND_bytes(bytes, sizeof bytes) != 1) fail_openssl("cannot draw a serial number");
  bytes[0] &= 0x7f;
  bytes[0] |= 0x40;  // always 20 octets, so every serial prints the same width
  Number number(BN_bin2bn(bytes, sizeof bytes, nullptr));
  if (!number || BN_to_ASN1_INTEGER(number.get(), X509_get_serialNumber(certificate)) == nullptr) {
    fail_openssl("cannot set a serial number");
  }
}

void set_validity(X509* certificate, const Validity& validity) {
  if (ASN1_TIME_set(X509_getm_notBefore(certificate), validity.not_before) == nullptr ||
      ASN1_TIME_set(X509_getm_notAfter(certificate), validity.not_after) == nullptr) {
    fail_openssl("cannot set a validity period");
  }
}

void add_extension(X509* certificate, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX context;
  X509V3_set_ctx(&context, issuer, certificate, nullptr, nullptr, 0);
  X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, &context, nid, value.c_str());
  if (extension == nullptr) fail_openssl("cannot build the extension " + value);
  int added = X509_add_ext(certificate, extension, -1);
  X509_EXTENSION_free(extension);
  if (added != 1) fail_openssl("cannot add the extension " + value);
}

Certificate new_certificate(EVP_PKEY* subject_key, X509_NAME* subject, X509_NAME* issuer,
                            const Validity& validity) {
  Certificate certificate(X509_new());
  if (!certificate || X509_set_version(certificate.get(), X509_VERSION_3) != 1 ||
      X509_set_subject_name(certificate.get(), subject) != 1 ||
      X509_set_issuer_name(certificate.get(), issuer) != 1 ||
      X509_set_pubkey(certificate.get(), subject_key) != 1) {
    fail_openssl("cannot build a certificate");
  }
  set_random_serial(certificate.get());
  set_validity(certificate.get(), validity);
  return certificate;
}

void sign(X509* certificate, EVP_PKEY* key) {
  if (X509_sign(certificate, key, EVP_sha256()) == 0) fail_openssl("cannot sign a certificate");
}

std::string subject_alt_names(const Identity& identity) {
  std::string names = "URI:" + identity_uri(identity);
  if (identity.role == Role::server) {
    names += (is_ip_address(identity.name) ? ",IP:" : ",DNS:") + identity.name;
  } else if (identity.role == Role::admin) {
    names += ",email:" + identity.name;
  }
  return names;
}

Certificate read_or_fail(std::string_view certificate) {
  auto parsed = detail::read_certificate(certificate);
  if (!parsed) throw IdentityError("not a PEM or DER certificate");
  return parsed;
}

}  // namespace

Validity validity_from(std::time_t now, int days) {
  return {now, now + static_cast<std::time_t>(days) * 24 * 3600};
}

CertificateAuthority CertificateAuthority::create(std::string_view project,
                                                  const Validity& validity) {
  PrivateKey key = detail::generate_key();
  Name name = subject_name(std::string(project) + " root CA", project, "");
  Certificate certificate = new_certificate(key.get(), name.get(), name.get(), validity);
  add_extension(certificate.get(), certificate.get(), NID_basic_constraints,
                "critical,CA:TRUE,pathlen:0");
  add_extension(certificate.get(), certificate.get(), NID_key_usage,
                "critical,keyCertSign,cRLSign");
  add_extension(certificate.get(), certificate.get(), NID_subject_key_identifier, "hash");
  sign(certificate.get(), key.get());
  CertificateAuthority authority;
  authority.certificate_pem_ = detail::certificate_pem(certificate.get());
  authority.key_.reset(key.release(), EVP_PKEY_free);
  authority.certificate_.reset(certificate.release(), X509_free);
  return authority;
}

CertificateAuthority CertificateAuthority::load(std::string_view certificate_pem,
                                                std::string_view private_key_pem) {
  auto certificate = detail::read_certificate(certificate_pem);
  if (!certificate) throw IdentityError("the CA certificate is not a PEM certificate");
  PrivateKey key = detail::read_key_pem(private_key_pem, "the CA key");
  if (X509_check_private_key(certificate.get(), key.get()) != 1) {
    fail_openssl("the CA key does not belong to the CA certificate");
  }
  CertificateAuthority authority;
  authority.certificate_pem_ = std::string(certificate_pem);
  authority.key_.reset(key.release(), EVP_PKEY_free);
  authority.certificate_.reset(certificate.release(), X509_free);
  return authority;
}

std::string CertificateAuthority::private_key_pem() const { return detail::key_pem(key_.get()); }

IssuedCertificate CertificateAuthority::issue(const ParticipantRequest& request) const {
  const Identity& identity = request.identity;
  if (auto problem = name_problem(identity.role, identity.name); !problem.empty()) {
    throw IdentityError("cannot issue a certificate for " + identity_uri(identity) + ": expected " +
                        problem);
  }
  PrivateKey key = detail::generate_key();
  Name name = subject_name(identity.name, request.organisation, role_name(identity.role));
  X509* issuer = certificate_.get();
  Certificate certificate =
      new_certificate(key.get(), name.get(), X509_get_subject_name(issuer), request.validity);
  add_extension(certificate.get(), issuer, NID_basic_constraints, "critical,CA:FALSE");
  add_extension(certificate.get(), issuer, NID_key_usage, "critical,digitalSignature");
  add_extension(certificate.get(), issuer, NID_ext_key_usage,
                identity.role == Role::server ? "serverAuth" : "clientAuth");
  add_extension(certificate.get(), issuer, NID_subject_alt_name, subject_alt_names(identity));
  add_extension(certificate.get(), issuer, NID_subject_key_identifier, "hash");
  add_extension(certificate.get(), issuer, NID_authority_key_identifier, "keyid:always");
  sign(certificate.get(), key_.get());
  return {detail::certificate_pem(certificate.get()), detail::key_pem(key.get())};
}

std::string CertificateAuthority::revocation_list_pem(std::span<const RevokedCertificate> revoked,
                                                      std::time_t now) const {
  detail::RevocationList crl(X509_CRL_new());
  Time last_update(ASN1_TIME_set(nullptr, now));
  if (!crl || !last_update || X509_CRL_set_version(crl.get(), 1) != 1 ||
      X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(certificate_.get())) != 1 ||
      X509_CRL_set1_lastUpdate(crl.get(), last_update.get()) != 1 ||
      X509_CRL_set1_nextUpdate(crl.get(), X509_get0_notAfter(certificate_.get())) != 1) {
    fail_openssl("cannot build a revocation list");
  }
  for (const auto& entry : revoked) {
    BIGNUM* raw = nullptr;
    if (BN_hex2bn(&raw, entry.serial_hex.c_str()) == 0) {
      throw IdentityError("not a hex serial number: " + entry.serial_hex);
    }
    Number number(raw);
    Integer serial(BN_to_ASN1_INTEGER(number.get(), nullptr));
    Time when(ASN1_TIME_set(nullptr, entry.revoked_at));
    X509_REVOKED* item = X509_REVOKED_new();
    if (item == nullptr || !serial || !when ||
        X509_REVOKED_set_serialNumber(item, serial.get()) != 1 ||
        X509_REVOKED_set_revocationDate(item, when.get()) != 1 ||
        X509_CRL_add0_revoked(crl.get(), item) != 1) {
      X509_REVOKED_free(item);
      fail_openssl("cannot list a revoked certificate");
    }
  }
  X509V3_CTX context;
  X509V3_set_ctx(&context, certificate_.get(), nullptr, nullptr, crl.get(), 0);
  X509_EXTENSION* key_id =
      X509V3_EXT_conf_nid(nullptr, &context, NID_authority_key_identifier, "keyid:always");
  if (key_id == nullptr || X509_CRL_add_ext(crl.get(), key_id, -1) != 1) {
    X509_EXTENSION_free(key_id);
    fail_openssl("cannot add the CRL's authority key identifier");
  }
  X509_EXTENSION_free(key_id);
  if (X509_CRL_sort(crl.get()) != 1 || X509_CRL_sign(crl.get(), key_.get(), EVP_sha256()) == 0) {
    fail_openssl("cannot sign the revocation list");
  }
  return detail::revocation_list_pem(crl.get());
}

std::string certificate_serial_hex(std::string_view certificate) {
  auto parsed = read_or_fail(certificate);
  Number number(ASN1_INTEGER_to_BN(X509_get0_serialNumber(parsed.get()), nullptr));
  char* hex = number ? BN_bn2hex(number.get()) : nullptr;
  if (hex == nullptr) fail_openssl("cannot read a serial number");
  std::string text(hex);
  OPENSSL_free(hex);
  return text;
}

std::optional<Identity> claimed_identity(std::string_view certificate) {
  auto parsed = detail::read_certificate(certificate);
  if (!parsed) return std::nullopt;
  auto uris = detail::identity_uris(parsed.get());
  if (uris.size() != 1) return std::nullopt;
  return parse_identity_uri(uris.front());
}

}  // namespace flare::identity
