#include "server/peer_admission.hpp"

#include <algorithm>

#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

namespace flare::server {

namespace {

namespace x = grpc::experimental;

template <class T, void (*Free)(T*)>
struct Freer {
  void operator()(T* p) const { Free(p); }
};
using Cert = std::unique_ptr<X509, Freer<X509, X509_free>>;
using Crl = std::unique_ptr<X509_CRL, Freer<X509_CRL, X509_CRL_free>>;
using Store = std::unique_ptr<X509_STORE, Freer<X509_STORE, X509_STORE_free>>;
using StoreCtx = std::unique_ptr<X509_STORE_CTX, Freer<X509_STORE_CTX, X509_STORE_CTX_free>>;
using Bio = std::unique_ptr<BIO, Freer<BIO, BIO_free_all>>;

Bio pem_bio(std::string_view pem) {
  return Bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

std::string subject_of(X509* cert) {
  char text[512];
  X509_NAME_oneline(X509_get_subject_name(cert), text, sizeof(text));
  return text;
}

std::optional<transport::PeerIdentity> identity_in(
    const std::vector<std::string>& uris, const std::string& common_name) {
  for (const auto& uri : uris)
    if (auto id = transport::parse_identity_uri(uri)) return id;
  if (!common_name.empty()) return transport::PeerIdentity{"site", common_name};
  return std::nullopt;
}

// The verification of a client's certificate, done here rather than inside
// gRPC's handshake so that each refusal reaches the audit with its reason
// (gRPC only logs "handshake failed"). The handshake itself still proves the
// client holds the certificate's key.
class ParticipantVerifier final : public x::ExternalCertificateVerifier {
 public:
  ParticipantVerifier(const ServerTls& tls, AuditLog* audit) : denied_(tls.denied), audit_(audit) {
    store_.reset(X509_STORE_new());
    auto ca_bio = pem_bio(tls.tls.ca_pem);
    Cert ca(PEM_read_bio_X509(ca_bio.get(), nullptr, nullptr, nullptr));
    if (!ca || X509_STORE_add_cert(store_.get(), ca.get()) != 1)
      throw std::runtime_error("TLS: the CA certificate cannot be read");
    if (!tls.crl_pem.empty()) {
      auto crl_bio = pem_bio(tls.crl_pem);
      Crl crl(PEM_read_bio_X509_CRL(crl_bio.get(), nullptr, nullptr, nullptr));
      if (!crl || X509_STORE_add_crl(store_.get(), crl.get()) != 1)
        throw std::runtime_error("TLS: the revocation list cannot be read");
      X509_STORE_set_flags(store_.get(), X509_V_FLAG_CRL_CHECK);
    }
  }

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
  std::string check(x::TlsCustomVerificationCheckRequest& request) {
    const auto pem = request.peer_cert();
    if (pem.empty()) return refuse("(none)", "no client certificate");
    auto bio = pem_bio(std::string_view(pem.data(), pem.size()));
    Cert cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!cert) return refuse("(unreadable)", "the client certificate cannot be read");
    const std::string subject = subject_of(cert.get());
    StoreCtx ctx(X509_STORE_CTX_new());
    if (!ctx || X509_STORE_CTX_init(ctx.get(), store_.get(), cert.get(), nullptr) != 1)
      return refuse(subject, "the certificate could not be checked");
    X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_CLIENT);
    if (X509_verify_cert(ctx.get()) != 1) {
      const int error = X509_STORE_CTX_get_error(ctx.get());
      std::string reason = X509_verify_cert_error_string(error);
      if (error == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
          error == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT)
        reason += " (not issued by this project's CA)";
      return refuse(subject, reason);
    }
    std::vector<std::string> uris;
    for (const auto& uri : request.uri_names()) uris.emplace_back(uri.data(), uri.size());
    const auto id = identity_in(uris, std::string(request.common_name().data(),
                                                  request.common_name().size()));
    if (!id) return refuse(subject, "the certificate names no participant");
    const bool denied = std::any_of(denied_.begin(), denied_.end(), [&](const std::string& d) {
      return d == id->name || d == transport::identity_uri(*id);
    });
    if (denied) return refuse(subject, "participant " + transport::identity_uri(*id) +
                                           " is denied by the server's configuration");
    return {};
  }

  std::string refuse(const std::string& subject, const std::string& reason) {
    if (audit_) audit_->handshake_refused(subject, reason);
    return reason;
  }

  Store store_;
  std::vector<std::string> denied_;
  AuditLog* audit_;
};

}  // namespace

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

std::optional<transport::PeerIdentity> peer_identity(const grpc::ServerContext& context) {
  const auto auth = context.auth_context();
  if (!auth || !auth->IsPeerAuthenticated()) return std::nullopt;
  std::vector<std::string> uris;
  for (const auto& uri : auth->FindPropertyValues(GRPC_PEER_URI_PROPERTY_NAME))
    uris.emplace_back(uri.data(), uri.size());
  std::string common_name;
  for (const auto& cn : auth->FindPropertyValues(GRPC_X509_CN_PROPERTY_NAME))
    common_name.assign(cn.data(), cn.size());
  return identity_in(uris, common_name);
}

}  // namespace flare::server
