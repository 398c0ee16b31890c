#include "server/peer_admission.hpp"

#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>

#include "identity/peer_check.hpp"

namespace flare::server {

namespace {

namespace x = grpc::experimental;

// What the audit calls a refused certificate: the identity it claims, else its CN.
std::string described(const x::TlsCustomVerificationCheckRequest& request) {
  const auto uris = request.uri_names();
  if (!uris.empty()) return std::string(uris.front().data(), uris.front().size());
  const auto cn = request.common_name();
  if (cn.size() > 0) return "CN=" + std::string(cn.data(), cn.size());
  return "(no identity)";
}

// The verification of a client's certificate, done here rather than inside
// gRPC's handshake so that each refusal reaches the audit with its reason
// (gRPC only logs "handshake failed"). The handshake itself still proves the
// client holds the certificate's key.
class ParticipantVerifier final : public x::ExternalCertificateVerifier {
 public:
  ParticipantVerifier(const ServerTls& tls, AuditLog* audit)
      : verifier_(tls.tls.ca_pem, tls.crl_pem, tls.denied), audit_(audit) {}

  bool Verify(x::TlsCustomVerificationCheckRequest* request, std::function<void(grpc::Status)>,
              grpc::Status* sync_status) override {
    const std::string refusal = check(*request);
    *sync_status = refusal.empty() ? grpc::Status::OK
                                   : grpc::Status(grpc::StatusCode::UNAUTHENTICATED, refusal);
    return true;
  }
  void Cancel(x::TlsCustomVerificationCheckRequest*) override {}

 private:
  // Empty when the certificate is admitted, else why not (audited).
  std::string check(const x::TlsCustomVerificationCheckRequest& request) const {
    const auto pem = request.peer_cert();
    if (pem.empty()) return refuse("(none)", "no_certificate", "no client certificate");
    const auto checked = verifier_.check(std::string_view(pem.data(), pem.size()));
    if (checked.accepted()) return {};
    return refuse(described(request), identity::refusal_name(checked.refusal), checked.reason);
  }

  std::string refuse(const std::string& certificate, std::string_view refusal,
                     const std::string& reason) const {
    if (audit_) audit_->handshake_refused(certificate, refusal, reason);
    return reason;
  }

  identity::PeerVerifier verifier_;
  AuditLog* audit_;
};

}  // namespace

ServerTls server_tls_from_kit(const identity::StartupKit& kit) {
  if (kit.identity().role != identity::Role::server)
    throw identity::IdentityError(kit.folder.string() + ": the startup folder is " +
                                  identity::identity_uri(kit.identity()) + "'s, not a server's");
  return {.tls = transport::tls_settings_from_kit(kit),
          .crl_pem = kit.revocation_list_pem,
          .denied = kit.config.denied_participants};
}

std::shared_ptr<grpc::ServerCredentials> server_credentials(const std::optional<ServerTls>& tls,
                                                            AuditLog* audit) {
  if (!tls) return grpc::InsecureServerCredentials();
  auto provider = std::make_shared<x::StaticDataCertificateProvider>(
      tls->tls.ca_pem,
      std::vector<x::IdentityKeyCertPair>{{tls->tls.key_pem, tls->tls.cert_pem}});
  x::TlsServerCredentialsOptions options(provider);
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  // ParticipantVerifier checks the certificate, and refuses a client without
  // one itself, so that this too reaches the audit.
  options.set_cert_request_type(GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_BUT_DONT_VERIFY);
  options.set_certificate_verifier(
      x::ExternalCertificateVerifier::Create<ParticipantVerifier>(*tls, audit));
  return grpc::experimental::TlsServerCredentials(options);
}

std::optional<identity::Identity> peer_identity(const grpc::ServerContext& context) {
  const auto auth = context.auth_context();
  if (!auth || !auth->IsPeerAuthenticated()) return std::nullopt;
  for (const auto& uri : auth->FindPropertyValues(GRPC_PEER_URI_PROPERTY_NAME))
    if (auto id = identity::parse_identity_uri(std::string_view(uri.data(), uri.size()))) return id;
  return std::nullopt;
}

std::string identity_text(const std::optional<identity::Identity>& id) {
  return id ? std::string(identity::role_name(id->role)) + "/" + id->name
            : std::string(kUnauthenticated);
}

}  // namespace flare::server
