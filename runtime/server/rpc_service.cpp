#include "server/rpc_service.hpp"

#include <atomic>
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

struct OpenUpload {
  OpenUpload(std::unique_ptr<UpdateIntake> opened, v1::UpdateHeader first, size_t tensors)
      : intake(std::move(opened)), header(std::move(first)), reader(*intake, tensors) {}
  std::unique_ptr<UpdateIntake> intake;  // dropped uncommitted: the update is taken back
  v1::UpdateHeader header;
  transport::ModelStreamReader reader;  // where the stream stands, across resumes
  ReceivedDigest digest;
  // Parts after the header folded into the intake: what the site may resume after.
  std::atomic<uint64_t> parts{0};
};

struct CutDownload {
  Task task;
  uint64_t total_parts = 0;
};

namespace {

// Parked transfers are the site's generation's own: a restarted group (a new
// generation) cannot resume its predecessor's.
std::string download_key(const std::string& site, int64_t generation) {
  return site + '\n' + std::to_string(generation);
}
std::string upload_key(const std::string& site, int64_t generation, const std::string& id) {
  return download_key(site, generation) + '\n' + id;
}

// An upload id is the site's random 128-bit hex; anything long or unprintable
// is refused before it becomes a key or a log line.
void check_upload_id(const std::string& id) {
  if (id.size() > 64 || common::printable(id) != id)
    throw InvalidRequest("upload id '" + id.substr(0, 64) + "' is not a short printable id");
}

}  // namespace

RpcService::RpcService(Controller& controller, std::shared_ptr<spdlog::logger> log,
                       v1::WireEncoding wire_encoding, CallerChecks checks,
                       std::chrono::milliseconds resume_grace)
    : controller_(controller),
      log_(std::move(log)),
      wire_encoding_(wire_encoding),
      checks_(checks),
      resume_grace_(resume_grace),
      uploads_(resume_grace,
               [this](const std::string&, OpenUpload& upload) {
                 if (log_)
                   log_->warn("upload {} from '{}' for round {} was not resumed within {} ms: "
                              "taken back after {} parts",
                              upload.header.upload_id(), upload.header.site(),
                              upload.header.round() + 1, resume_grace_.count(),
                              upload.parts.load());
               }),
      downloads_(resume_grace) {}

RpcService::~RpcService() = default;

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
  const std::string key = download_key(req->site(), req->generation());
  std::shared_ptr<CutDownload> download;
  uint64_t from_part = 0;
  const auto status = answer(context, "GetTask", req->site(), nullptr, [&] {
    admit(context, req->site());
    if (req->has_resume()) download = resumable_download(*req, key);
    if (download) {
      from_part = static_cast<uint64_t>(req->resume().from_part());
      return;
    }
    downloads_.drop(key);  // the site asks afresh: it has (or gave up) what was held
    Task task = controller_.next_task(req->site(), req->generation(), kTaskPoll);
    const uint64_t parts =
        task.model ? transport::count_parts(task.model->views(), wire_encoding_) : 0;
    download = std::make_shared<CutDownload>(CutDownload{std::move(task), parts});
  });
  if (!status.ok()) return status;
  return send_task(writer, req->site(), key, std::move(download), from_part);
}

std::shared_ptr<CutDownload> RpcService::resumable_download(const v1::TaskRequest& req,
                                                            const std::string& key) {
  const auto& resume = req.resume();
  auto download = downloads_.take(key, resume_grace_ / 2);
  std::string why;
  if (!download) {
    why = "no cut download is held for it (expired, or the server restarted)";
  } else if (download->task.round != resume.round()) {
    why = "the download held is of round " + std::to_string(download->task.round + 1);
  } else if (resume.from_part() < 0 ||
             static_cast<uint64_t>(resume.from_part()) > download->total_parts) {
    why = "part " + std::to_string(resume.from_part()) + " is not in its " +
          std::to_string(download->total_parts) + " parts";
  }
  if (why.empty()) {
    if (log_)
      log_->info("resumed download of round {} to '{}' at part {} of {}", resume.round() + 1,
                 common::printable(req.site()), resume.from_part(), download->total_parts);
    return download;
  }
  if (download) downloads_.finish(key, download);
  if (log_)
    log_->info("cannot resume the download of round {} to '{}' ({}): it gets a fresh task",
               resume.round() + 1, common::printable(req.site()), why);
  return nullptr;
}

grpc::Status RpcService::send_task(grpc::ServerWriter<v1::TaskPart>* writer,
                                   const std::string& site, const std::string& key,
                                   std::shared_ptr<CutDownload> download, uint64_t from_part) {
  const Task& task = download->task;
  v1::TaskPart part;
  *part.mutable_task() = to_wire(task);
  part.mutable_task()->set_from_part(static_cast<int64_t>(from_part));
  if (!task.model) {
    (void)writer->Write(part);  // a site that left misses it, as with any reply
    return grpc::Status::OK;
  }
  downloads_.start(key, download);
  bool whole = false;
  try {
    uint64_t skip = from_part;
    whole = writer->Write(part) &&
            transport::write_tensors(
                task.model->views(), false, wire_encoding_,
                [&](const v1::TensorHeader* header, std::span<const std::byte> bytes) {
                  transport::set_part(part, header, bytes);
                  return writer->Write(part);
                },
                &skip);
  } catch (const std::range_error& e) {
    // The global model holds a value the job's wire dtype cannot carry: no
    // site can receive it, so the job cannot go on.
    downloads_.finish(key, download);
    const std::string reason = std::string("the global model cannot be sent: ") + e.what();
    controller_.server_failed(reason);
    return grpc::Status(grpc::StatusCode::ABORTED, reason);
  }
  // Held for a resume also when every part was written: written is only
  // buffered, and a cut may still lose the last parts. The site's next
  // request for a task lets it go, or the grace period's end.
  downloads_.park(key, download);
  if (!whole && log_)
    log_->info("download of round {} to '{}' cut: held {} ms for a resume", task.round + 1,
               common::printable(site), resume_grace_.count());
  return grpc::Status::OK;
}

namespace {

// Feeds the rest of an upload to `reader`, counting the parts it took in
// `parts`; a malformed stream is the site's. `digest` sees the tensors' bytes
// as they arrive (the audit's checksum). False when the stream was cut before
// it was whole and `resumable`: then it can go on later.
bool read_tensors(grpc::ServerContext* context, grpc::ServerReader<v1::UploadPart>* stream,
                  transport::ModelStreamReader& reader, const std::string& what,
                  ReceivedDigest& digest, std::atomic<uint64_t>& parts, bool resumable) {
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
      ++parts;
    }
    if (resumable && context->IsCancelled()) return false;
    reader.finish();
  } catch (const transport::MalformedTensor& e) {
    throw InvalidRequest(what + ": " + e.what());
  }
  return true;
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
    std::atomic<uint64_t> parts{0};
    read_tensors(context, stream, reader, "initial model from " + common::printable(site), digest,
                 parts, false);
    controller_.accept_initial_model(from_wire(header, std::move(sink.tensors())));
    if (checks_.audit)
      checks_.audit->model_accepted("initial_model", site, -1, digest.bytes(),
                                    digest.sha256_hex());
  });
}

grpc::Status RpcService::SubmitUpdate(grpc::ServerContext* context,
                                      grpc::ServerReader<v1::UploadPart>* stream, v1::Ack* ack) {
  v1::UploadPart first;
  std::string site, key;
  std::shared_ptr<OpenUpload> upload;
  bool unknown = false, cut = false;
  const auto status = answer(context, "SubmitUpdate", site, ack, [&] {
    if (!stream->Read(&first) || !(first.has_update() || first.has_resume()))
      throw InvalidRequest("SubmitUpdate did not start with its header");
    if (first.has_resume()) {
      const auto& resume = first.resume();
      site = resume.site();
      admit(context, site);
      check_upload_id(resume.upload_id());
      key = upload_key(site, resume.generation(), resume.upload_id());
      upload = uploads_.take(key, resume_grace_ / 2);
      if (!upload) {
        unknown = true;
        return;
      }
      if (resume.from_part() < 0 || static_cast<uint64_t>(resume.from_part()) != upload->parts)
        throw InvalidRequest("upload " + resume.upload_id() + " resumed at part " +
                             std::to_string(resume.from_part()) + ", the server holds " +
                             std::to_string(upload->parts.load()));
      if (log_)
        log_->info("resumed upload {} from '{}' at part {} of {}", resume.upload_id(), site,
                   resume.from_part(), resume.total_parts());
    } else {
      const auto& header = first.update();
      site = header.site();
      admit(context, site);
      check_upload_id(header.upload_id());
      const size_t tensors = static_cast<size_t>(header.num_weights()) + header.num_aux();
      // Refused here, before a byte of it is read, if it does not fit the round.
      upload = std::make_shared<OpenUpload>(controller_.open_update(from_wire(header)), header,
                                            tensors);
      downloads_.drop(download_key(site, header.generation()));  // its task's model arrived
      if (!header.upload_id().empty()) {
        key = upload_key(site, header.generation(), header.upload_id());
        uploads_.start(key, upload);
      }
    }
    if (!read_tensors(context, stream, upload->reader, upload->intake->what(), upload->digest,
                      upload->parts, !key.empty())) {
      cut = true;
      return;
    }
    controller_.commit_update(*upload->intake);
    if (checks_.audit)
      checks_.audit->model_accepted("update", site, upload->header.round(),
                                    upload->digest.bytes(), upload->digest.sha256_hex());
  });
  if (unknown) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        refused(context, "SubmitUpdate", site,
                                "upload " + first.resume().upload_id() +
                                    " is not held here (expired, or the server restarted): "
                                    "send it again"));
  }
  if (key.empty()) return status;
  if (cut && status.ok()) {
    // Folded so far and kept so: the site resumes after the last part taken.
    uploads_.park(key, upload);
    if (log_)
      log_->info("upload {} from '{}' cut after part {}: held {} ms for a resume",
                 upload->header.upload_id(), site, upload->parts.load(), resume_grace_.count());
    return grpc::Status(grpc::StatusCode::CANCELLED, "the upload was cut");
  }
  uploads_.finish(key, upload);
  return status;
}

grpc::Status RpcService::UploadStatus(grpc::ServerContext* context, const v1::UploadQuery* query,
                                      v1::UploadState* state) {
  return answer(context, "UploadStatus", query->site(), nullptr, [&] {
    admit(context, query->site());
    check_upload_id(query->upload_id());
    // A cut this server has not noticed yet is waited for a while.
    const int64_t parts = uploads_.peek(
        upload_key(query->site(), query->generation(), query->upload_id()), resume_grace_ / 2,
        int64_t{-1}, [](const OpenUpload& u) { return static_cast<int64_t>(u.parts.load()); });
    state->set_parked(parts >= 0);
    state->set_acknowledged_parts(std::max<int64_t>(parts, 0));
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
