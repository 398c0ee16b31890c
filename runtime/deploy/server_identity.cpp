#include "deploy/server_identity.hpp"

namespace flare::deploy {

server::ServerTls server_tls_of(const identity::StartupKit& kit) {
  return {.tls = {kit.ca_certificate_pem, kit.certificate_pem, kit.private_key_pem},
          .crl_pem = kit.revocation_list_pem,
          .denied = kit.config.denied_participants};
}

}  // namespace flare::deploy
