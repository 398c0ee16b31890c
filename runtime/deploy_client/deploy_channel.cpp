#include "deploy_client/deploy_channel.hpp"

#include "common/printable_text.hpp"
#include "transport/server_connection.hpp"
#include "transport/tls_settings.hpp"

namespace flare::deploy_client {

namespace {

// gRPC's own reconnect backoff grows to two minutes: a server restarted
// after an outage would sit unreached that long.
constexpr int kReconnectBackoffMs = 500;
constexpr int kMaxReconnectBackoffMs = 5000;

std::string_view code_name(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::CANCELLED: return "CANCELLED";
    case grpc::StatusCode::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND: return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS: return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED: return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED: return "ABORTED";
    case grpc::StatusCode::UNIMPLEMENTED: return "UNIMPLEMENTED";
    case grpc::StatusCode::UNAVAILABLE: return "UNAVAILABLE";
    case grpc::StatusCode::UNAUTHENTICATED: return "UNAUTHENTICATED";
    default: return "gRPC error";
  }
}

}  // namespace

identity::StartupKit load_kit_for(const std::filesystem::path& folder, identity::Role role,
                                  std::string_view program) {
  identity::StartupKit kit;
  try {
    kit = identity::load_startup_kit(folder);
  } catch (const identity::IdentityError& e) {
    throw StartupFolderError("cannot use the startup folder " + folder.string() + ": " +
                             e.what());
  }
  if (kit.identity().role != role)
    throw StartupFolderError(std::string(program) + " needs the startup folder of " +
                             (role == identity::Role::admin ? "an " : "a ") +
                             std::string(identity::role_name(role)) + "; " + folder.string() +
                             " holds " + identity::identity_uri(kit.identity()) + "'s");
  return kit;
}

std::string server_address(const identity::StartupKit& kit, int port) {
  const std::string& host = kit.config.server_host;
  const bool ipv6 = host.find(':') != std::string::npos;
  return (ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::string server_address(const identity::StartupKit& kit) {
  return server_address(kit, kit.config.server_port);
}

std::shared_ptr<grpc::Channel> deploy_channel(const identity::StartupKit& kit) {
  auto args = transport::channel_arguments(transport::kDefaultAnswerTimeout);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, kReconnectBackoffMs);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, kReconnectBackoffMs);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, kMaxReconnectBackoffMs);
  const transport::TlsSettings tls{kit.ca_certificate_pem, kit.certificate_pem,
                                   kit.private_key_pem};
  return grpc::CreateCustomChannel(server_address(kit), transport::channel_credentials(tls),
                                   args);
}

std::string describe_failure(const grpc::Status& status) {
  std::string text = std::string(code_name(status.error_code())) + ": " +
                     common::printable(status.error_message());
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE)
    text += " (the server is not running, not reachable, or the TLS handshake failed: it must "
            "show a flare://server/ certificate of this project's CA and accept this one)";
  return text;
}

}  // namespace flare::deploy_client
