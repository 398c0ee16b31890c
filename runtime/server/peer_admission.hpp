// Who may talk to the server, and as whom. Over mutual TLS a participant
// must present a certificate the project CA issued, valid now, not revoked
// (the CA's revocation list) and not denied by the server's configuration
// (identity::PeerVerifier checks all four); what it then claims in a request
// (a site name) must be its certificate's identity. Every refusal is told in
// the audit trail with its reason.
#pragma once

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "identity/identity.hpp"
#include "identity/startup_kit.hpp"
#include "server/audit_log.hpp"
#include "transport/tls_settings.hpp"

namespace flare::server {

struct ServerTls {
  transport::TlsSettings tls;  // the CA, the server's certificate and key
  std::string crl_pem;         // the CA's revocation list; empty: none
  // Participants refused although their certificates are valid: a name
  // ("site-3") or an identity URI ("flare://site/site-3").
  std::vector<std::string> denied;
};

// The server's TLS from its provisioned startup folder (identity::
// load_startup_kit): its certificate and key, the CA, crl.pem when present
// and local.toml's denied_participants. Throws identity::IdentityError when
// the kit is not a server's.
ServerTls server_tls_from_kit(const identity::StartupKit& kit);

// Mutual TLS with the checks above, or plaintext when `tls` is unset. The
// handshake of a refused certificate fails; `audit` (may be null, borrowed)
// gets why. Throws identity::IdentityError when the CA or the CRL is unusable.
std::shared_ptr<grpc::ServerCredentials> server_credentials(const std::optional<ServerTls>& tls,
                                                            AuditLog* audit);

// The caller's identity as its verified certificate's flare:// URI gives it;
// none on a plaintext port.
std::optional<identity::Identity> peer_identity(const grpc::ServerContext& context);

// The caller as the audit names it: "site/site-1", or "unauthenticated".
std::string identity_text(const std::optional<identity::Identity>& id);

// A request whose caller may not make it (another site's name, no identity).
class RefusedPeer : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace flare::server
