#include "server/rpc_service.hpp"

#include <stdexcept>

#include "common/printable_text.hpp"
#include "server/update_intake.hpp"
#include "transport/model_stream.hpp"
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
grpc::Status RpcService::answer(grpc::ServerContext* context, const char* call,
                                const std::string& site, v1::Ack* ack, F&& body) {
  try {
    body();
    if (ack) ack->set_accepted(true);
    return grpc::Status::OK;
  } catch (const RefusedPeer& e) {
    // Before anything of the request was taken: it is not the caller's to make.
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                        refused(context, call, site, e.what()));
  } catch (const JobEnded& e) {
    return grpc::Status(grpc::StatusCode::ABORTED, e.what());
  } catch (const host::PluginCallError& e) {
    // The aggregator failed folding a request that passed every check: the
    // job fails, blamed on the aggregator, not on the site.
    controller_.aggregator_failed(e);
    return grpc::Status(grpc::StatusCode::ABORTED, "the job has ended: the aggregator failed");
  } catch (const RegisterAgain& e) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND, refused(context, call, site, e.what()));
  } catch (const LateResult& e) {
    return grpc::Status(grpc::StatusCode::OUT_OF_RANGE, refused(context, call, site, e.what()));
  } catch (const InvalidRequest& e) {
    const std::string why = refused(context, call, site, e.what());
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, why);
  } catch (const RejectedRequest& e) {
    const std::string why = refused(context, call, site, e.what());
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

namespace {


}  // namespace

void RpcService::admit(grpc::ServerContext* context, const std::string& claimed_site) const {
  const auto id = peer_identity(*context);
  if (checks_.audit) checks_.audit->connection(context->peer(), identity_text(id));
  if (!checks_.require_identity) return;
  if (!id) throw RefusedPeer("the caller presented no verified identity");
  if (id->role != identity::Role::site)
    throw RefusedPeer("the caller is " + identity::identity_uri(*id) + ", not a site");
  if (id->name != claimed_site)
    throw RefusedPeer("the caller is " + identity::identity_uri(*id) +
                      ": it may not speak for site '" + claimed_site + "'");
}

std::string RpcService::refused(grpc::ServerContext* context, const char* call,
                                const std::string& site, const std::string& reason) const {
  // The reason may quote what the request carried; bounded, it fits the
  // status trailer gRPC sends it in (a long one would be lost to the site).
  auto bounded = [](const std::string& text, size_t most) {
    std::string safe = common::printable(text);
    return safe.size() > most ? safe.substr(0, most) + "..." : safe;
  };
  const std::string why = bounded(reason, 1024);
  if (log_)
    log_->warn("refused {} from '{}' at {}: {}", call, bounded(site, 256),
               bounded(context->peer(), 256), why);
  if (checks_.audit)
    checks_.audit->request_refused(call, context->peer(), identity_text(peer_identity(*context)),
                                   site, reason);
  return why;
}

grpc::Status RpcService::Register(grpc::ServerContext* context, const v1::RegisterRequest* req,
                                  v1::RegisterReply* reply) {
  return answer(context, "Register", req->site(), nullptr, [&] {
    admit(context, req->site());
    const Registration registration = controller_.register_site(from_wire(*req));
    reply->set_num_rounds(registration.num_rounds);
    reply->set_generation(registration.generation);
    reply->set_wire_encoding(wire_encoding_);
  });
}

grpc::Status RpcService::GetTask(grpc::ServerContext* context, const v1::TaskRequest* req,
                                 grpc::ServerWriter<v1::TaskPart>* writer) {
  Task task;
  const auto status = answer(context, "GetTask", req->site(), nullptr, [&] {
    admit(context, req->site());
    task = controller_.next_task(req->site(), req->generation(), kTaskPoll);
  });
  if (!status.ok()) return status;
  v1::TaskPart part;
  *part.mutable_task() = to_wire(task);
  // A site that left misses the rest, as with any reply.
  if (!writer->Write(part) || !task.model) return status;
  try {
    transport::write_tensors(
        task.model->views(), false, wire_encoding_,
        [&](const v1::TensorHeader* header, std::span<const std::byte> bytes) {
          transport::set_part(part, header, bytes);
          return writer->Write(part);
        });
  } catch (const std::range_error& e) {
    // The global model holds a value the job's wire dtype cannot carry: no
    // site can receive it, so the job cannot go on.
    const std::string reason = std::string("the global model cannot be sent: ") + e.what();
    controller_.server_failed(reason);
    return grpc::Status(grpc::StatusCode::ABORTED, reason);
  }
  return status;
}

namespace {

// Feeds the rest of an upload to `reader`; a malformed stream is the site's.
// `digest` sees the tensors' bytes as they arrive (the audit's checksum).
void read_tensors(grpc::ServerReader<v1::UploadPart>* stream, transport::ModelStreamReader& reader,
                  const std::string& what, ReceivedDigest& digest) {
  v1::UploadPart part;
  try {
    while (stream->Read(&part)) {
      if (part.has_tensor()) {
        reader.tensor(part.tensor());
      } else if (part.has_data()) {
        digest.add(part.data());
        reader.data(part.data());
      } else {
        throw transport::MalformedTensor(0, "a second header came in the middle of the tensors");
      }
    }
    reader.finish();
  } catch (const transport::MalformedTensor& e) {
    throw InvalidRequest(what + ": " + e.what());
  }
}

}  // namespace

grpc::Status RpcService::SubmitInitialModel(grpc::ServerContext* context,
                                            grpc::ServerReader<v1::UploadPart>* stream,
                                            v1::Ack* ack) {
  v1::UploadPart first;
  std::string site;
  return answer(context, "SubmitInitialModel", site, ack, [&] {
    if (!stream->Read(&first) || !first.has_initial())
      throw InvalidRequest("SubmitInitialModel did not start with its header");
    const auto& header = first.initial();
    site = header.site();
    admit(context, site);
    transport::OwnedTensorsSink sink;
    transport::ModelStreamReader reader(sink, static_cast<size_t>(std::max(0, header.num_tensors())));
    ReceivedDigest digest;
    read_tensors(stream, reader, "initial model from " + common::printable(site), digest);
    controller_.accept_initial_model(from_wire(header, std::move(sink.tensors())));
    if (checks_.audit)
      checks_.audit->model_accepted("initial_model", site, -1, digest.bytes(),
                                    digest.sha256_hex());
  });
}

grpc::Status RpcService::SubmitUpdate(grpc::ServerContext* context,
                                      grpc::ServerReader<v1::UploadPart>* stream, v1::Ack* ack) {
  v1::UploadPart first;
  std::string site;
  return answer(context, "SubmitUpdate", site, ack, [&] {
    if (!stream->Read(&first) || !first.has_update())
      throw InvalidRequest("SubmitUpdate did not start with its header");
    const auto& header = first.update();
    site = header.site();
    admit(context, site);
    const size_t tensors = static_cast<size_t>(header.num_weights()) + header.num_aux();
    // Refused here, before a byte of it is read, if it does not fit the round.
    auto intake = controller_.open_update(from_wire(header));
    transport::ModelStreamReader reader(*intake, tensors);
    ReceivedDigest digest;
    read_tensors(stream, reader, intake->what(), digest);
    controller_.commit_update(*intake);
    if (checks_.audit)
      checks_.audit->model_accepted("update", site, header.round(), digest.bytes(),
                                    digest.sha256_hex());
  });
}

grpc::Status RpcService::SubmitEvaluation(grpc::ServerContext* context,
                                          const v1::Evaluation* e, v1::Ack* ack) {
  return answer(context, "SubmitEvaluation", e->site(), ack, [&] {
    admit(context, e->site());
    controller_.accept_evaluation(from_wire(*e));
  });
}

grpc::Status RpcService::ReportProgress(grpc::ServerContext* context, const v1::Progress* p,
                                        v1::Ack* ack) {
  return answer(context, "ReportProgress", p->site(), ack, [&] {
    admit(context, p->site());
    controller_.progress(from_wire(*p));
  });
}

grpc::Status RpcService::SendHeartbeat(grpc::ServerContext* context, const v1::Heartbeat* beat,
                                       v1::Ack* ack) {
  return answer(context, "SendHeartbeat", beat->site(), ack, [&] {
    admit(context, beat->site());
    controller_.heartbeat(beat->site(), beat->generation());
  });
}

grpc::Status RpcService::ReportMetrics(grpc::ServerContext* context,
                                       const v1::MetricBatch* batch, v1::Ack* ack) {
  return answer(context, "ReportMetrics", batch->site(), ack, [&] {
    admit(context, batch->site());
    controller_.site_metrics(from_wire(*batch));
  });
}

grpc::Status RpcService::ReportFailure(grpc::ServerContext* context, const v1::Failure* f,
                                       v1::Ack* ack) {
  return answer(context, "ReportFailure", f->site(), ack, [&] {
    admit(context, f->site());
    controller_.failure(from_wire(*f));
  });
}

grpc::Status RpcService::RefuseJob(grpc::ServerContext* context, const v1::Refusal* r,
                                   v1::Ack* ack) {
  return answer(context, "RefuseJob", r->site(), ack, [&] {
    admit(context, r->site());
    controller_.site_refused(from_wire(*r));
  });
}

RpcServer::RpcServer(grpc::Service& service, const std::string& host, int port,
                     std::shared_ptr<grpc::ServerCredentials> credentials)
    : RpcServer(std::vector<grpc::Service*>{&service}, host, port, std::move(credentials)) {}

RpcServer::RpcServer(const std::vector<grpc::Service*>& services, const std::string& host,
                     int port, std::shared_ptr<grpc::ServerCredentials> credentials)
    : host_(host) {
  grpc::ServerBuilder builder;
  builder.AddListeningPort(host + ":" + std::to_string(port),
                           credentials ? credentials : grpc::InsecureServerCredentials(), &port_);
  // A message is one part of a model or a small request.
  builder.SetMaxReceiveMessageSize(transport::kMaxMessageBytes);
  // Sites ping during long calls (a model upload sends the server nothing
  // back for a while); gRPC's default takes pings closer than 5 min for abuse.
  builder.AddChannelArgument(
      GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
      static_cast<int>(std::chrono::milliseconds(transport::kMinKeepaliveInterval).count() / 2));
  for (auto* service : services) builder.RegisterService(service);
  server_ = builder.BuildAndStart();
  if (!server_ || port_ == 0)
    throw std::runtime_error("cannot listen on " + host + ":" + std::to_string(port));
}

RpcServer::~RpcServer() {
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
}

}  // namespace flare::server
