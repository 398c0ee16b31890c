// Test support for the deployment's clients (the site daemon, flare-admin):
// a project provisioned by flare-provision's library into a temp folder, and
// a real gRPC server on loopback with mutual TLS from one of its startup
// folders, holding the test's fake services.
#pragma once

#include <grpc/grpc_security_constants.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/child_process.hpp"
#include "common/local_host.hpp"
#include "identity/startup_kit.hpp"
#include "provision/provisioner.hpp"
#include "temp_folder.hpp"

namespace flare::testing {

// "proj": server 127.0.0.1 on a free port, site-1, admin@org.com.
class ProvisionedProject {
 public:
  ProvisionedProject() : port_(common::free_tcp_port()) {
    provision::Project project;
    project.name = "proj";
    project.server_name = "127.0.0.1";
    project.server_port = static_cast<std::uint16_t>(port_);
    project.sites = {{"site-1", "hospital-a", 1}};
    project.admins = {{"admin@org.com", "org-a", "project_admin"}};
    provision::provision(project, {folder_.path(), {}, {}, 0});
  }
  int port() const { return port_; }
  std::filesystem::path startup(const std::string& name) const {
    return folder_.path() / "proj" / name / "startup";
  }
  std::filesystem::path server_startup() const { return startup("127.0.0.1"); }
  const std::filesystem::path& root() const { return folder_.path(); }

 private:
  TempFolder folder_;
  int port_;
};

// Listens on 127.0.0.1:port with the certificate of `startup` (a server's
// for the real thing, anyone's for an impostor), requiring and verifying the
// caller's certificate against the project's CA.
class TlsTestServer {
 public:
  TlsTestServer(const std::filesystem::path& startup, int port,
                const std::vector<grpc::Service*>& services) {
    const auto kit = identity::load_startup_kit(startup);
    grpc::SslServerCredentialsOptions options(
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    options.pem_root_certs = kit.ca_certificate_pem;
    options.pem_key_cert_pairs.push_back({kit.private_key_pem, kit.certificate_pem});
    grpc::ServerBuilder builder;
    // A server restarted on the port must be the only one listening there.
    builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
    builder.AddListeningPort("127.0.0.1:" + std::to_string(port),
                             grpc::SslServerCredentials(options));
    for (auto* service : services) builder.RegisterService(service);
    server_ = builder.BuildAndStart();
    if (!server_) throw std::runtime_error("cannot listen on port " + std::to_string(port));
  }
  ~TlsTestServer() { server_->Shutdown(std::chrono::system_clock::now()); }

 private:
  std::unique_ptr<grpc::Server> server_;
};

// The common name of the caller's verified certificate (its participant name).
inline std::string caller_name(const grpc::ServerContext& context) {
  const auto names = context.auth_context()->FindPropertyValues(GRPC_X509_CN_PROPERTY_NAME);
  return names.empty() ? "" : std::string(names.front().data(), names.front().size());
}

// Polls `condition` every 20 ms for up to `timeout`.
template <class Condition>
bool eventually(Condition condition, std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return condition();
}

}  // namespace flare::testing
