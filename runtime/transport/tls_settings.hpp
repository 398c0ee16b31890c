// Mutual TLS between the server and the sites: the project CA, and this
// participant's certificate and key, all PEM. Every connection is verified
// both ways against the CA; who the peer is comes from its certificate
// (its flare:// identity, identity/identity.hpp), never from what a request
// claims.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include <grpcpp/grpcpp.h>

#include "identity/startup_kit.hpp"

namespace flare::transport {

struct TlsSettings {
  std::string ca_pem;    // the project CA: the only issuer trusted
  std::string cert_pem;  // this participant's certificate
  std::string key_pem;   // and its private key
};

// The files of a TLS folder (flare-client/flare-worker --tls-dir), named as
// in a provisioned startup folder (identity/startup_kit.hpp), so a site's
// startup folder is its TLS folder too.
inline constexpr const char* kCaFile = "ca.crt";
inline constexpr const char* kCertFile = "participant.crt";
inline constexpr const char* kKeyFile = "participant.key";

// Reads `dir`'s three files; throws std::runtime_error naming the file that
// is missing or empty, or the key when others may read it.
TlsSettings load_tls_dir(const std::filesystem::path& dir);

// Writes `settings` as a TLS folder: the folder and the key owner-only.
void write_tls_dir(const std::filesystem::path& dir, const TlsSettings& settings);

// A participant's TLS from its provisioned startup folder (identity::
// load_startup_kit, which has checked it): a site's or an admin's programs
// connect with their own certificate.
TlsSettings tls_settings_from_kit(const identity::StartupKit& kit);

// A site's side: mutual TLS when `tls` is set (the server must prove a
// flare://server/ identity from the CA), plaintext otherwise.
std::shared_ptr<grpc::ChannelCredentials> channel_credentials(
    const std::optional<TlsSettings>& tls);

}  // namespace flare::transport
