// Provisioning in memory for a one-machine run: a throw-away CA, the server
// and N sites, nothing written. flare-run uses it so that its loopback job
// goes through the same mutual-TLS path as a deployment.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "identity/startup_kit.hpp"

namespace flare::identity {

struct EphemeralFederation {
  std::string ca_certificate_pem;
  StartupKit server;
  std::vector<StartupKit> sites;  // in the order of the names given
};

// Kits valid from a minute ago (clock skew between processes) for `lifetime`.
EphemeralFederation provision_ephemeral(const std::string& server_host, std::uint16_t server_port,
                                        const std::vector<std::string>& site_names,
                                        std::chrono::seconds lifetime = std::chrono::hours(24));

}  // namespace flare::identity
