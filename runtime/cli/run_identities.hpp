// A one-machine run takes the same mutual-TLS path as sites on other hosts:
// flare-run makes a CA for the run alone (identity::CertificateAuthority, as
// provisioning does), and a certificate per participant, in <run>/tls
// (owner-only; the CA's key is never written: nobody can issue another
// certificate for this run once it ended).
#pragma once

#include <filesystem>
#include <string>

#include "identity/certificate_authority.hpp"
#include "server/peer_admission.hpp"

namespace flare::cli {

class RunIdentities {
 public:
  explicit RunIdentities(const std::filesystem::path& tls_root, const std::string& job_name);

  // The server's certificate and the run's CA.
  server::ServerTls server_tls() const;
  // Issues `site`'s certificate and writes its folder (flare-client
  // --tls-dir), <tls_root>/<site>. Called as each site's client starts, so a
  // run of thousands of sites spends no time on them before its server runs.
  std::filesystem::path site_dir(const std::string& site) const;

 private:
  transport::TlsSettings issue(const identity::Identity& who) const;

  std::filesystem::path root_;
  identity::Validity validity_;
  identity::CertificateAuthority ca_;
};

}  // namespace flare::cli
