#include "transport/tls_settings.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <stdexcept>

#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>

#include "identity/identity.hpp"

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
      const auto id = identity::parse_identity_uri(std::string_view(uri.data(), uri.size()));
      if (id && id->role == identity::Role::server) {
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

void write_private(const std::filesystem::path& file, const std::string& text, mode_t mode) {
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) throw std::runtime_error("TLS: cannot write " + file.string());
  ::fchmod(fd, mode);  // an existing file keeps its mode through open()
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  if (!ok) throw std::runtime_error("TLS: cannot write " + file.string());
}

}  // namespace

void write_tls_dir(const std::filesystem::path& dir, const TlsSettings& settings) {
  std::filesystem::create_directories(dir);
  std::filesystem::permissions(dir, std::filesystem::perms::owner_all);
  write_private(dir / kCaFile, settings.ca_pem, 0644);
  write_private(dir / kCertFile, settings.cert_pem, 0644);
  write_private(dir / kKeyFile, settings.key_pem, 0600);
}

TlsSettings tls_settings_from_kit(const identity::StartupKit& kit) {
  return {kit.ca_certificate_pem, kit.certificate_pem, kit.private_key_pem};
}

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
