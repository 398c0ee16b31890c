// Who may talk to the server, and as whom. Over mutual TLS a participant
// must present a certificate the project CA issued, valid now, not revoked
// (the CA's revocation list) and not denied by the server's configuration;
// what it then claims in a request (a site name) must be its certificate's
// identity. Every refusal is told in the audit trail with its reason.
#pragma once

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "server/audit_log.hpp"
#include "transport/peer_identity.hpp"
#include "transport/tls_settings.hpp"

namespace flare::server {

struct ServerTls {
  transport::TlsSettings tls;  // the CA, the server's certificate and key
  std::string crl_pem;         // the CA's revocation list; empty: none
  // Participants refused although their certificates are valid: a name
  // ("site-3") or an identity URI ("flare://site/site-3").
  std::vector<std::string> denied;
};

// Mutual TLS with the checks above, or plaintext when `tls` is unset. The
// handshake of a refused certificate fails; `audit` (may be null, borrowed)
// gets why.
std::shared_ptr<grpc::ServerCredentials> server_credentials(const std::optional<ServerTls>& tls,
                                                            AuditLog* audit);

// The caller's identity as its verified certificate gives it: the flare://
// SAN URI, else the CN taken as a site's name; none on a plaintext port.
std::optional<transport::PeerIdentity> peer_identity(const grpc::ServerContext& context);

// A request whose caller may not make it (another site's name, no identity).
class RefusedPeer : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace flare::server
