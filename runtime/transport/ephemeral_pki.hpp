// A certificate authority made on the spot: flare-run's per-run CA (one
// machine takes the same mutual-TLS path as many), and the tests' CAs and
// impostor certificates. Certificates carry the identity as provisioning
// writes it (CN = name, SAN URI flare://<role>/<name>); EC P-256 keys.
// Provisioning proper (runtime/identity/) replaces this where it is merged.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "transport/peer_identity.hpp"
#include "transport/tls_settings.hpp"

namespace flare::transport {

struct IssuedCertificate {
  std::string cert_pem;
  std::string key_pem;
  long serial = 0;
};

// When a certificate is valid, relative to now.
struct Validity {
  std::chrono::seconds from = -std::chrono::hours(1);  // clocks a little apart
  std::chrono::seconds until = std::chrono::hours(24 * 7);
};

class EphemeralCa {
 public:
  explicit EphemeralCa(const std::string& name);
  ~EphemeralCa();
  EphemeralCa(const EphemeralCa&) = delete;
  EphemeralCa& operator=(const EphemeralCa&) = delete;

  const std::string& cert_pem() const { return cert_pem_; }
  IssuedCertificate issue(const PeerIdentity& id, Validity validity = {});
  // A revocation list (PEM) naming `revoked` serials, signed by this CA.
  std::string revocation_list(const std::vector<long>& revoked) const;
  // CA, certificate and key together, as a participant loads them.
  TlsSettings settings_for(const IssuedCertificate& issued) const {
    return {cert_pem_, issued.cert_pem, issued.key_pem};
  }

 private:
  struct Keys;
  std::unique_ptr<Keys> keys_;
  std::string cert_pem_;
  long next_serial_ = 2;
};

// Writes `settings` as a TLS folder (load_tls_dir): the folder and the key
// owner-only.
void write_tls_dir(const std::filesystem::path& dir, const TlsSettings& settings);

}  // namespace flare::transport
