#include "transport/tls_settings.hpp"

#include <fstream>
#include <sstream>
#include <stdexcept>

#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>

#include "transport/peer_identity.hpp"

namespace flare::transport {

namespace {

std::string read_pem(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error("TLS: cannot read " + file.string());
  std::ostringstream text;
  text << in.rdbuf();
  if (text.str().find("-----BEGIN ") == std::string::npos)
    throw std::runtime_error("TLS: " + file.string() + " holds no PEM block");
  return text.str();
}

// The chain to the CA is verified by gRPC; this checks that the peer is the
// project's server, not another participant holding a certificate from the
// same CA. Host names are not checked: a server is known by its identity.
class ServerIdentityVerifier final : public grpc::experimental::ExternalCertificateVerifier {
 public:
  bool Verify(grpc::experimental::TlsCustomVerificationCheckRequest* request,
              std::function<void(grpc::Status)>, grpc::Status* sync_status) override {
    for (const auto& uri : request->uri_names()) {
      const auto id = parse_identity_uri(std::string_view(uri.data(), uri.size()));
      if (id && id->role == "server") {
        *sync_status = grpc::Status::OK;
        return true;
      }
    }
    *sync_status = grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                                "the peer's certificate holds no flare://server/ identity");
    return true;
  }
  void Cancel(grpc::experimental::TlsCustomVerificationCheckRequest*) override {}
};

}  // namespace

TlsSettings load_tls_dir(const std::filesystem::path& dir) {
  const auto key = dir / kKeyFile;
  std::error_code ec;
  const auto perms = std::filesystem::status(key, ec).permissions();
  if (!ec && (perms & (std::filesystem::perms::group_all | std::filesystem::perms::others_all)) !=
                 std::filesystem::perms::none)
    throw std::runtime_error("TLS: " + key.string() +
                             " may be read by others: make it owner-only (chmod 600)");
  return {read_pem(dir / kCaFile), read_pem(dir / kCertFile), read_pem(key)};
}

std::shared_ptr<grpc::ChannelCredentials> channel_credentials(
    const std::optional<TlsSettings>& tls) {
  if (!tls) return grpc::InsecureChannelCredentials();
  namespace x = grpc::experimental;
  auto provider = std::make_shared<x::StaticDataCertificateProvider>(
      tls->ca_pem, std::vector<x::IdentityKeyCertPair>{{tls->key_pem, tls->cert_pem}});
  x::TlsChannelCredentialsOptions options;
  options.set_certificate_provider(provider);
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  options.set_verify_server_certs(true);
  options.set_certificate_verifier(
      x::ExternalCertificateVerifier::Create<ServerIdentityVerifier>());
  options.set_check_call_host(false);
  return grpc::experimental::TlsCredentials(options);
}

}  // namespace flare::transport
