#include "server/rpc_service.hpp"

#include <stdexcept>

#include "common/printable_text.hpp"
#include "transport/server_connection.hpp"

namespace flare::server {

namespace {

// Long polls return WAIT after this long, so a site notices a dead server.
constexpr std::chrono::milliseconds kTaskPoll{2000};

}  // namespace

// A request is answered, never thrown: a malformed one INVALID_ARGUMENT, one
// that does not fit the job's state refused through the Ack (or
// FAILED_PRECONDITION for the calls without one), each naming what was wrong.
// A request after the job's end, and one the server itself failed to handle
// (a full disk), are answered ABORTED: the site leaves as at the end of a job
// instead of failing, and only the server is blamed.
template <class F>
grpc::Status RpcService::answer(const char* call, const std::string& site, v1::Ack* ack,
                                F&& body) {
  try {
    body();
    if (ack) ack->set_accepted(true);
    return grpc::Status::OK;
  } catch (const JobEnded& e) {
    return grpc::Status(grpc::StatusCode::ABORTED, e.what());
  } catch (const InvalidRequest& e) {
    const std::string why = refused(call, site, e.what());
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, why);
  } catch (const RejectedRequest& e) {
    const std::string why = refused(call, site, e.what());
    if (!ack) return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, why);
    ack->set_accepted(false);
    ack->set_message(why);
    return grpc::Status::OK;
  } catch (const std::exception& e) {
    const std::string reason = "the server failed: " + common::printable(e.what());
    controller_.server_failed(reason);
    return grpc::Status(grpc::StatusCode::ABORTED, reason);
  }
}

std::string RpcService::refused(const char* call, const std::string& site,
                                const std::string& reason) const {
  // The reason may quote what the request carried.
  std::string why = common::printable(reason);
  if (log_) log_->warn("refused {} from '{}': {}", call, common::printable(site), why);
  return why;
}

grpc::Status RpcService::Register(grpc::ServerContext*, const v1::RegisterRequest* req,
                                  v1::RegisterReply* reply) {
  return answer("Register", req->site(), nullptr, [&] {
    const Registration registration = controller_.register_site(from_wire(*req));
    reply->set_num_rounds(registration.num_rounds);
    reply->set_generation(registration.generation);
  });
}

grpc::Status RpcService::StreamedGetTask(
    grpc::ServerContext*, grpc::ServerUnaryStreamer<v1::TaskRequest, v1::Task>* stream) {
  v1::TaskRequest req;
  if (!stream->Read(&req)) return grpc::Status(grpc::StatusCode::INTERNAL, "no task request");
  std::shared_ptr<const v1::Task> task;
  const auto status = answer("GetTask", req.site(), nullptr, [&] {
    task = tasks_.encode(controller_.next_task(req.site(), req.generation(), kTaskPoll));
  });
  if (status.ok()) stream->Write(*task);  // a site that left misses it, as with any reply
  return status;
}

grpc::Status RpcService::SubmitInitialModel(grpc::ServerContext*, const v1::InitialModel* m,
                                            v1::Ack* ack) {
  return answer("SubmitInitialModel", m->site(), ack,
                [&] { controller_.accept_initial_model(from_wire(*m)); });
}

grpc::Status RpcService::SubmitUpdate(grpc::ServerContext*, const v1::Update* u, v1::Ack* ack) {
  return answer("SubmitUpdate", u->site(), ack, [&] { controller_.accept_update(from_wire(*u)); });
}

grpc::Status RpcService::SubmitEvaluation(grpc::ServerContext*, const v1::Evaluation* e,
                                          v1::Ack* ack) {
  return answer("SubmitEvaluation", e->site(), ack,
                [&] { controller_.accept_evaluation(from_wire(*e)); });
}

grpc::Status RpcService::ReportProgress(grpc::ServerContext*, const v1::Progress* p,
                                        v1::Ack* ack) {
  return answer("ReportProgress", p->site(), ack, [&] { controller_.progress(from_wire(*p)); });
}

grpc::Status RpcService::ReportFailure(grpc::ServerContext*, const v1::Failure* f,
                                       v1::Ack* ack) {
  return answer("ReportFailure", f->site(), ack, [&] { controller_.failure(from_wire(*f)); });
}

RpcServer::RpcServer(RpcService& service, const std::string& host, int port) : host_(host) {
  grpc::ServerBuilder builder;
  builder.AddListeningPort(host + ":" + std::to_string(port), grpc::InsecureServerCredentials(),
                           &port_);
  builder.SetMaxReceiveMessageSize(transport::kMaxMessageBytes);
  builder.SetMaxSendMessageSize(transport::kMaxMessageBytes);
  // Sites ping during long calls (a model upload sends the server nothing
  // back for a while); gRPC's default takes pings closer than 5 min for abuse.
  builder.AddChannelArgument(
      GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
      static_cast<int>(std::chrono::milliseconds(transport::kMinKeepaliveInterval).count() / 2));
  builder.RegisterService(&service);
  server_ = builder.BuildAndStart();
  if (!server_ || port_ == 0)
    throw std::runtime_error("cannot listen on " + host + ":" + std::to_string(port));
}

RpcServer::~RpcServer() {
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
}

}  // namespace flare::server
