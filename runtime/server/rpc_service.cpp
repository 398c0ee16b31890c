#include "server/rpc_service.hpp"

#include <stdexcept>

#include "transport/server_connection.hpp"

namespace flare::server {

namespace v1 = transport::v1;

namespace {

// A request that does not fit the job's state is answered, not thrown: the
// site learns why through the Ack (or the gRPC status for non-Ack calls).
template <class F>
grpc::Status answer(v1::Ack* ack, F&& body) {
  try {
    body();
    if (ack) ack->set_accepted(true);
  } catch (const RejectedRequest& e) {
    if (!ack) return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, e.what());
    ack->set_accepted(false);
    ack->set_message(e.what());
  } catch (const std::exception& e) {
    return grpc::Status(grpc::StatusCode::INTERNAL, e.what());
  }
  return grpc::Status::OK;
}

// Long polls return WAIT after this long, so a site notices a dead server.
constexpr std::chrono::milliseconds kTaskPoll{2000};

}  // namespace

grpc::Status RpcService::Register(grpc::ServerContext*, const v1::RegisterRequest* req,
                                  v1::RegisterReply* reply) {
  return answer(nullptr, [&] { *reply = controller_.register_site(*req); });
}

grpc::Status RpcService::GetTask(grpc::ServerContext*, const v1::TaskRequest* req,
                                 v1::Task* task) {
  return answer(nullptr, [&] { *task = controller_.next_task(*req, kTaskPoll); });
}

grpc::Status RpcService::SubmitInitialModel(grpc::ServerContext*, const v1::InitialModel* m,
                                            v1::Ack* ack) {
  return answer(ack, [&] { controller_.accept_initial_model(*m); });
}

grpc::Status RpcService::SubmitUpdate(grpc::ServerContext*, const v1::Update* u, v1::Ack* ack) {
  return answer(ack, [&] { controller_.accept_update(*u); });
}

grpc::Status RpcService::SubmitEvaluation(grpc::ServerContext*, const v1::Evaluation* e,
                                          v1::Ack* ack) {
  return answer(ack, [&] { controller_.accept_evaluation(*e); });
}

grpc::Status RpcService::ReportProgress(grpc::ServerContext*, const v1::Progress* p,
                                        v1::Ack* ack) {
  return answer(ack, [&] { controller_.progress(*p); });
}

grpc::Status RpcService::ReportFailure(grpc::ServerContext*, const v1::Failure* f,
                                       v1::Ack* ack) {
  return answer(ack, [&] { controller_.failure(*f); });
}

RpcServer::RpcServer(RpcService& service, const std::string& host, int port) : host_(host) {
  grpc::ServerBuilder builder;
  builder.AddListeningPort(host + ":" + std::to_string(port), grpc::InsecureServerCredentials(),
                           &port_);
  builder.SetMaxReceiveMessageSize(transport::kMaxMessageBytes);
  builder.SetMaxSendMessageSize(transport::kMaxMessageBytes);
  builder.RegisterService(&service);
  server_ = builder.BuildAndStart();
  if (!server_ || port_ == 0)
    throw std::runtime_error("cannot listen on " + host + ":" + std::to_string(port));
}

RpcServer::~RpcServer() {
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
}

}  // namespace flare::server
