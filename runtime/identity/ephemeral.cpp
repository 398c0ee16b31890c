#include "identity/ephemeral.hpp"

#include <ctime>

#include "identity/certificate_authority.hpp"

namespace flare::identity {

EphemeralFederation provision_ephemeral(const std::string& server_host, std::uint16_t server_port,
                                        const std::vector<std::string>& site_names,
                                        std::chrono::seconds lifetime) {
  const std::string project = "ephemeral";
  std::time_t now = std::time(nullptr);
  Validity validity{now - 60, now + static_cast<std::time_t>(lifetime.count())};
  auto authority = CertificateAuthority::create(project, validity);

  auto kit_for = [&](const Identity& identity) {
    auto issued = authority.issue({identity, project, validity});
    StartupKit kit;
    kit.config.project = project;
    kit.config.self = identity;
    kit.config.server_host = server_host;
    kit.config.server_port = server_port;
    kit.certificate_pem = std::move(issued.certificate_pem);
    kit.private_key_pem = std::move(issued.private_key_pem);
    kit.ca_certificate_pem = authority.certificate_pem();
    return kit;
  };

  EphemeralFederation federation;
  federation.ca_certificate_pem = authority.certificate_pem();
  federation.server = kit_for({Role::server, server_host});
  federation.server.config.sites = site_names;
  federation.sites.reserve(site_names.size());
  for (const auto& name : site_names) federation.sites.push_back(kit_for({Role::site, name}));
  return federation;
}

}  // namespace flare::identity
