// The gRPC face of the controller, and the server that hosts it. Each call
// converts its request to the domain (rpc_conversion), asks the controller,
// and converts the answer back; a refused request is answered, not thrown.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "server/controller.hpp"
#include "server/rpc_conversion.hpp"
#include "transport/flare.grpc.pb.h"

namespace flare::server {

// GetTask is served in gRPC's streamed-unary form: its reply is written from
// the round's one shared encoded task, where a plain unary handler would
// first copy the whole model into a response message of its own.
class RpcService final : public transport::v1::FlareServer::WithStreamedUnaryMethod_GetTask<
                             transport::v1::FlareServer::Service> {
 public:
  explicit RpcService(Controller& controller) : controller_(controller) {}

  grpc::Status Register(grpc::ServerContext*, const transport::v1::RegisterRequest*,
                        transport::v1::RegisterReply*) override;
  grpc::Status StreamedGetTask(
      grpc::ServerContext*,
      grpc::ServerUnaryStreamer<transport::v1::TaskRequest, transport::v1::Task>*) override;
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

  // How many times a global model was encoded for the wire (once per model).
  int64_t model_encodings() const { return tasks_.model_encodings(); }

 private:
  template <class F>
  grpc::Status answer(transport::v1::Ack* ack, F&& body);

  Controller& controller_;
  TaskEncoder tasks_;
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
