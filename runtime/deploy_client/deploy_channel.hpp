// A participant's connection to the long-running server (transport/
// deploy.proto) from its startup folder: local.toml's server host and port,
// mutual TLS with the participant's certificate, and the server proving a
// flare://server/ identity from the project's CA. The site daemon
// (flare-client --startup) and flare-admin both connect this way.
#pragma once

#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include <grpcpp/grpcpp.h>

#include "identity/startup_kit.hpp"

namespace flare::deploy_client {

// A startup folder that cannot serve `program`: missing, unreadable, not
// fitting together, or another role's. The message names the folder and why.
class StartupFolderError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// load_startup_kit, and the kit must be a `role`'s: an admin's folder given
// to the site daemon is refused naming whose it is.
identity::StartupKit load_kit_for(const std::filesystem::path& folder, identity::Role role,
                                  std::string_view program);

// "host:port" of local.toml's server (an IPv6 literal in brackets).
std::string server_address(const identity::StartupKit& kit);
// The same host with another port: a job's own server.
std::string server_address(const identity::StartupKit& kit, int port);

// A channel to the kit's server over mutual TLS with keepalive pings (a
// vanished server is noticed during a long call) and a short reconnect
// backoff (a server that comes back is reached within seconds).
std::shared_ptr<grpc::Channel> deploy_channel(const identity::StartupKit& kit);

// A failed call in words, printable (the server's text is remote):
// "PERMISSION_DENIED: not an admin of this project". An unreachable server
// gets a hint that a refused handshake looks the same.
std::string describe_failure(const grpc::Status& status);

}  // namespace flare::deploy_client
