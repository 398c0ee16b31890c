// The long-running server's TLS from its provisioned startup folder: its
// certificate and key, the project CA, the revocation list (crl.pem) and the
// names its local.toml denies.
#pragma once

#include "identity/startup_kit.hpp"
#include "server/peer_admission.hpp"

namespace flare::deploy {

server::ServerTls server_tls_of(const identity::StartupKit& kit);

}  // namespace flare::deploy
