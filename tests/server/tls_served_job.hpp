// A job's RpcService behind mutual TLS on loopback (the real listener and
// credentials), requiring verified identities, with its audit trail read back.
#pragma once

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "audit_lines.hpp"
#include "controller_job.hpp"
#include "server/audit_log.hpp"
#include "server/peer_admission.hpp"
#include "server/rpc_service.hpp"
#include "transport/server_connection.hpp"

namespace flare::testing {

struct TlsServedJob : ControllerJob {
  explicit TlsServedJob(std::vector<std::string> sites) : ControllerJob(std::move(sites), 1) {}

  // Listens on a free loopback port; called once the server's TLS is known.
  void serve(const server::ServerTls& tls) {
    rpc = std::make_unique<server::RpcServer>(service, "127.0.0.1", 0,
                                              server::server_credentials(tls, &audit));
  }

  std::unique_ptr<transport::v1::FlareServer::Stub> stub(const transport::TlsSettings& settings) {
    return transport::v1::FlareServer::NewStub(grpc::CreateCustomChannel(
        rpc->address(), transport::channel_credentials(settings),
        transport::channel_arguments(5s)));
  }
  std::vector<nlohmann::json> audit_lines(const std::string& event) const {
    return flare::testing::audit_lines(audit_file, event);
  }

  std::filesystem::path audit_file = dir.path() / "audit.jsonl";
  server::AuditLog audit{audit_file};
  server::RpcService service{controller, nullptr, transport::v1::RAW,
                             {.require_identity = true, .audit = &audit}};
  std::unique_ptr<server::RpcServer> rpc;
};

inline grpc::Status register_as(transport::v1::FlareServer::Stub& stub, const std::string& site) {
  transport::v1::RegisterRequest request;
  request.set_site(site);
  request.set_world_size(1);
  transport::v1::RegisterReply reply;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 5s);
  return stub.Register(&context, request, &reply);
}

}  // namespace flare::testing
