// The gRPC face of the controller, and the server that hosts it.
#pragma once

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "server/controller.hpp"
#include "transport/flare.grpc.pb.h"

namespace flare::server {

class RpcService final : public transport::v1::FlareServer::Service {
 public:
  explicit RpcService(Controller& controller) : controller_(controller) {}

  grpc::Status Register(grpc::ServerContext*, const transport::v1::RegisterRequest*,
                        transport::v1::RegisterReply*) override;
  grpc::Status GetTask(grpc::ServerContext*, const transport::v1::TaskRequest*,
                       transport::v1::Task*) override;
  grpc::Status SubmitInitialModel(grpc::ServerContext*, const transport::v1::InitialModel*,
                                  transport::v1::Ack*) override;
  grpc::Status SubmitUpdate(grpc::ServerContext*, const transport::v1::Update*,
                            transport::v1::Ack*) override;
  grpc::Status SubmitEvaluation(grpc::ServerContext*, const transport::v1::Evaluation*,
                                transport::v1::Ack*) override;
  grpc::Status ReportProgress(grpc::ServerContext*, const transport::v1::Progress*,
                              transport::v1::Ack*) override;
  grpc::Status ReportFailure(grpc::ServerContext*, const transport::v1::Failure*,
                             transport::v1::Ack*) override;

 private:
  Controller& controller_;
};

// A listening gRPC server; `port` 0 picks a free one (see bound_port()).
class RpcServer {
 public:
  RpcServer(RpcService& service, const std::string& host, int port);
  ~RpcServer();
  int bound_port() const { return port_; }
  std::string address() const { return host_ + ":" + std::to_string(port_); }

 private:
  std::string host_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace flare::server
