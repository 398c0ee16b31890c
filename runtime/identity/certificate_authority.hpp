// A project's certificate authority: it issues each participant's certificate
// (ECDSA P-256, X.509 v3, the identity URI in a SAN) and signs the revocation
// list. Everything goes in and out as PEM text; files are the caller's.
#pragma once

#include <openssl/types.h>

#include <ctime>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "identity/identity.hpp"

namespace flare::identity {

// [not_before, not_after], seconds since the epoch (UTC).
struct Validity {
  std::time_t not_before = 0;
  std::time_t not_after = 0;
};
// From `now` for `days` days.
Validity validity_from(std::time_t now, int days);

struct ParticipantRequest {
  Identity identity;
  std::string organisation;  // the subject's O; empty: none
  Validity validity;
};

struct IssuedCertificate {
  std::string certificate_pem;
  std::string private_key_pem;
};

struct RevokedCertificate {
  std::string serial_hex;  // as certificate_serial_hex() gives it
  std::time_t revoked_at = 0;
};

class CertificateAuthority {
 public:
  // A new CA key and self-signed certificate, CN "<project> root CA".
  static CertificateAuthority create(std::string_view project, const Validity& validity);
  // The CA as written before; throws IdentityError when the key does not
  // belong to the certificate.
  static CertificateAuthority load(std::string_view certificate_pem,
                                   std::string_view private_key_pem);

  const std::string& certificate_pem() const { return certificate_pem_; }
  std::string private_key_pem() const;

  // A fresh key and a certificate for it: CN and SAN carry the identity
  // (the server's also its DNS name or IP), basicConstraints CA:FALSE,
  // keyUsage digitalSignature, extendedKeyUsage serverAuth (server) or
  // clientAuth (site, admin), a random 159-bit serial.
  IssuedCertificate issue(const ParticipantRequest& request) const;

  // A CRL (v2) listing `revoked`, issued at `now`, next update at the CA's own
  // expiry (the list is re-signed only when it changes: see docs/deploying.md).
  std::string revocation_list_pem(std::span<const RevokedCertificate> revoked,
                                  std::time_t now) const;

 private:
  CertificateAuthority() = default;
  std::shared_ptr<EVP_PKEY> key_;
  std::shared_ptr<X509> certificate_;
  std::string certificate_pem_;
};

// A certificate's serial number, upper-case hex (PEM or DER input).
std::string certificate_serial_hex(std::string_view certificate);
// The identity a certificate claims, unverified (reading back what was
// issued, e.g. to see whether a participant's role changed). Nothing when it
// is unreadable or carries no single flare:// URI.
std::optional<Identity> claimed_identity(std::string_view certificate);

}  // namespace flare::identity
