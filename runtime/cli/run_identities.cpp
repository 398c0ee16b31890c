#include "cli/run_identities.hpp"

#include <ctime>

namespace flare::cli {

namespace {

// From a minute ago (the clients' clocks are this machine's, but a second
// boundary may fall between issuing and checking) for a week: no run lasts longer.
identity::Validity run_validity() {
  const std::time_t now = std::time(nullptr);
  return {now - 60, now + 7 * 24 * 3600};
}

}  // namespace

RunIdentities::RunIdentities(const std::filesystem::path& tls_root, const std::string& job_name)
    : root_(tls_root),
      validity_(run_validity()),
      ca_(identity::CertificateAuthority::create("flare-run " + job_name.substr(0, 40), validity_)) {
  std::filesystem::create_directories(root_);
  std::filesystem::permissions(root_, std::filesystem::perms::owner_all);
}

transport::TlsSettings RunIdentities::issue(const identity::Identity& who) const {
  auto issued = ca_.issue({who, "flare-run", validity_});
  return {ca_.certificate_pem(), std::move(issued.certificate_pem),
          std::move(issued.private_key_pem)};
}

server::ServerTls RunIdentities::server_tls() const {
  // Named for the loopback address the sites dial by default ([server]
  // host), which also spares each client gRPC's "No match found for server
  // name" line; sites check the server by its flare:// identity.
  return {.tls = issue({identity::Role::server, "127.0.0.1"})};
}

std::filesystem::path RunIdentities::site_dir(const std::string& site) const {
  const auto dir = root_ / site;
  transport::write_tls_dir(dir, issue({identity::Role::site, site}));
  return dir;
}

}  // namespace flare::cli
