#include "transport/server_connection.hpp"

#include <algorithm>
#include <cstdio>
#include <optional>
#include <random>
#include <thread>
#include <utility>

#include "transport/model_stream.hpp"

namespace flare::transport {

namespace {

// Calls that carry models (a task carries the global model) get generous
// deadlines, enough for gigabytes over a slow link: the keepalive pings
// notice a server that stopped answering.
constexpr auto kModelCallDeadline = std::chrono::hours(2);

std::unique_ptr<grpc::ClientContext> context_with(std::chrono::milliseconds deadline) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + deadline);
  return ctx;
}

// A site's upload id: 128 random bits as hex.
std::string random_upload_id() {
  std::random_device random;
  std::string id;
  const char* digits = "0123456789abcdef";
  for (int word = 0; word < 4; ++word) {
    const uint32_t bits = random();
    for (int shift = 28; shift >= 0; shift -= 4) id += digits[(bits >> shift) & 0xf];
  }
  return id;
}

// Between resume attempts: short at first (a reset connection comes back at
// once), longer for a server that is restarting.
class Backoff {
 public:
  explicit Backoff(std::chrono::milliseconds budget)
      : give_up_(std::chrono::steady_clock::now() + budget) {}
  // Waits before the next attempt; false when the budget is spent.
  bool wait() {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        give_up_ - std::chrono::steady_clock::now());
    if (left <= std::chrono::milliseconds(0)) return false;
    std::this_thread::sleep_for(std::min(pause_, left));
    pause_ = std::min<std::chrono::milliseconds>(pause_ * 2, std::chrono::seconds(2));
    return std::chrono::steady_clock::now() < give_up_;
  }
  std::chrono::milliseconds left() const {
    return std::max(std::chrono::milliseconds(1),
                    std::chrono::duration_cast<std::chrono::milliseconds>(
                        give_up_ - std::chrono::steady_clock::now()));
  }

 private:
  std::chrono::steady_clock::time_point give_up_;
  std::chrono::milliseconds pause_{100};
};

}  // namespace

bool is_cut(const grpc::Status& status) {
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::CANCELLED:
    case grpc::StatusCode::INTERNAL:
    case grpc::StatusCode::UNKNOWN: return true;
    default: return false;
  }
}

grpc::ChannelArguments channel_arguments(std::chrono::milliseconds answer_timeout) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);  // a part of the global model
  const auto half = std::max<std::chrono::milliseconds>(answer_timeout / 2, kMinKeepaliveInterval);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, static_cast<int>(half.count()));
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, static_cast<int>(half.count()));
  // A task poll and a model upload send no data for a while: keep pinging.
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  // gRPC's reconnect backoff grows to 120 s by default: a site would notice
  // its restarted server up to two minutes late. Retrying at least every 2 s
  // costs one connection attempt per site per 2 s of outage.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 250);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 250);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  return args;
}

ServerConnection::ServerConnection(const std::string& address, std::string site,
                                   std::chrono::milliseconds answer_timeout,
                                   const std::optional<TlsSettings>& tls)
    : address_(address),
      site_(std::move(site)),
      answer_timeout_(answer_timeout),
      tls_(tls.has_value()),
      channel_(grpc::CreateCustomChannel(address, channel_credentials(tls),
                                         channel_arguments(answer_timeout))),
      stub_(v1::FlareServer::NewStub(channel_)) {}

void ServerConnection::wait_until_reachable(std::chrono::milliseconds timeout) {
  if (!channel_->WaitForConnected(std::chrono::system_clock::now() + timeout)) {
    throw TransportError("cannot reach the server at " + address_ + " within " +
                         std::to_string(timeout.count()) + " ms" +
                         (tls_ ? " (over mutual TLS: if it runs, it may have refused this "
                                 "site's certificate, and its audit log says why)"
                               : ""));
  }
}

void ServerConnection::check(const grpc::Status& status, const char* call,
                             const v1::Ack* ack) const {
  if (status.error_code() == grpc::StatusCode::ABORTED)
    throw JobEndedError(std::string(call) + " not taken: " + status.error_message());
  if (status.error_code() == grpc::StatusCode::NOT_FOUND)
    throw RegisterAgainError(std::string(call) + " refused: " + status.error_message());
  if (status.error_code() == grpc::StatusCode::OUT_OF_RANGE)
    throw LateResultError(std::string(call) + " refused as late: " + status.error_message());
  if (!status.ok()) {
    std::string why = status.error_message() + " (gRPC code " +
                      std::to_string(status.error_code()) + ")";
    const std::string failed = std::string(call) + " to the server at " + address_ + " failed: ";
    if (status.error_code() == grpc::StatusCode::UNAVAILABLE ||
        status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
      char limit[32];
      std::snprintf(limit, sizeof(limit), "%g", answer_timeout_.count() / 1000.0);
      throw ServerUnreachableError(failed + "the server is gone or did not answer within " +
                                   std::string(limit) + " s (server.answer_timeout_s): " + why);
    }
    throw TransportError(failed + why);
  }
  if (ack && !ack->accepted()) {
    throw TransportError(std::string(call) + " refused by the server: " + ack->message());
  }
}

v1::RegisterReply ServerConnection::register_site(int world_size) {
  v1::RegisterRequest req;
  req.set_site(site_);
  req.set_world_size(world_size);
  v1::RegisterReply reply;
  auto ctx = context_with(answer_timeout_);
  check(stub_->Register(ctx.get(), req, &reply), "Register");
  generation_ = reply.generation();
  wire_encoding_ = reply.wire_encoding();
  return reply;
}

// A task as it streams in, across the streams of a resumed download.
struct ServerConnection::TaskDownload {
  ReceivedTask received;
  bool has_task = false;
  std::string malformed;
  std::unique_ptr<OwnedTensorsSink> sink;
  std::optional<ModelStreamReader> model;
  uint64_t parts = 0;  // model parts received (tensor headers and data parts)

  // `task` continues the model this download holds, from its next part.
  bool continued_by(const v1::Task& task) const {
    return has_task && task.from_part() > 0 &&
           static_cast<uint64_t>(task.from_part()) == parts &&
           task.round() == received.task.round() && task.kind() == received.task.kind();
  }
  void start(v1::Task task) {
    has_task = true;
    received.task = std::move(task);
    sink = std::make_unique<OwnedTensorsSink>();
    model.emplace(*sink, static_cast<size_t>(std::max(0, received.task.num_tensors())));
    parts = 0;
  }
};

grpc::Status ServerConnection::receive_task(const v1::TaskRequest& req, TaskDownload& d,
                                            bool wait_for_ready) {
  auto ctx = context_with(kModelCallDeadline);
  ctx->set_wait_for_ready(wait_for_ready);
  auto reader = stub_->GetTask(ctx.get(), req);
  v1::TaskPart part;
  bool first = true;
  // Every part is read, also after a malformed one, so the call ends cleanly.
  while (reader->Read(&part)) {
    if (!d.malformed.empty()) continue;
    try {
      if (first) {
        first = false;
        if (!part.has_task()) {
          d.malformed = "a model part came before the task";
        } else if (!d.continued_by(part.task())) {
          if (part.task().from_part() != 0) {
            d.malformed = "the model resumed at part " + std::to_string(part.task().from_part()) +
                          ", this site holds " + std::to_string(d.parts);
          }
          d.start(std::move(*part.mutable_task()));
        }
      } else if (part.has_tensor()) {
        d.model->tensor(part.tensor());
        ++d.parts;
      } else if (part.has_data()) {
        d.model->data(part.data());
        ++d.parts;
      } else {
        d.malformed = "an empty or second task part";
      }
    } catch (const MalformedTensor& e) {
      d.malformed = e.what();
    }
  }
  return reader->Finish();
}

ReceivedTask ServerConnection::next_task() {
  v1::TaskRequest req;
  req.set_site(site_);
  req.set_generation(generation_);
  TaskDownload download;
  grpc::Status status = receive_task(req, download, false);
  if (is_cut(status) && download.has_task && download.malformed.empty() &&
      download.received.task.num_tensors() > 0) {
    // The server holds the cut download a while: ask for the rest.
    Backoff backoff(answer_timeout_);
    while (is_cut(status) && backoff.wait()) {
      const auto& task = download.received.task;
      req.mutable_resume()->set_round(task.round());
      req.mutable_resume()->set_from_part(static_cast<int64_t>(download.parts));
      log_->info("resuming the download of round {} at part {}", task.round() + 1,
                 download.parts);
      status = receive_task(req, download, true);
    }
  }
  check(status, "GetTask");
  std::string malformed = download.malformed;
  try {
    if (malformed.empty() && !download.has_task) malformed = "no task";
    if (malformed.empty()) download.model->finish();
  } catch (const MalformedTensor& e) {
    malformed = e.what();
  }
  if (!malformed.empty())
    throw TransportError("GetTask: the server at " + address_ + " sent a malformed task: " + malformed);
  ReceivedTask received = std::move(download.received);
  received.model = std::move(download.sink->tensors());
  return received;
}

grpc::Status ServerConnection::stream_upload(UploadStart start, const v1::UploadPart& first,
                                             std::span<const flare_named_tensor> weights,
                                             std::span<const flare_named_tensor> aux,
                                             uint64_t skip_parts, v1::Ack& ack) {
  ack.Clear();
  auto ctx = context_with(kModelCallDeadline);
  // A resumed stream waits for the connection to come back.
  ctx->set_wait_for_ready(first.has_resume());
  auto writer = ((*stub_).*start)(ctx.get(), &ack);
  v1::UploadPart part;
  // A failed Write means the server ended the call (it refused the update,
  // or is gone): Finish says why.
  const PartEmitter emit = [&](const v1::TensorHeader* header, std::span<const std::byte> bytes) {
    set_part(part, header, bytes);
    return writer->Write(part);
  };
  bool sent = false;
  try {
    sent = writer->Write(first) && write_tensors(weights, false, wire_encoding_, emit, &skip_parts) &&
           write_tensors(aux, true, wire_encoding_, emit, &skip_parts);
  } catch (...) {  // a value the wire dtype cannot carry: the upload is called off
    ctx->TryCancel();
    (void)writer->Finish();
    throw;
  }
  if (sent) writer->WritesDone();
  return writer->Finish();
}

grpc::Status ServerConnection::resume_upload(UploadStart start, const v1::UploadPart& first,
                                             std::span<const flare_named_tensor> weights,
                                             std::span<const flare_named_tensor> aux,
                                             grpc::Status status, v1::Ack& ack) {
  const std::string& id = first.update().upload_id();
  const uint64_t total = count_parts(weights, wire_encoding_) + count_parts(aux, wire_encoding_);
  Backoff backoff(answer_timeout_);
  while (is_cut(status) && backoff.wait()) {
    v1::UploadQuery query;
    query.set_site(site_);
    query.set_generation(generation_);
    query.set_upload_id(id);
    v1::UploadState state;
    auto ctx = context_with(backoff.left());
    ctx->set_wait_for_ready(true);
    status = stub_->UploadStatus(ctx.get(), query, &state);
    if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
      status = grpc::Status(grpc::StatusCode::UNAVAILABLE, status.error_message());
      continue;  // not back within the budget: the loop ends
    }
    if (!status.ok()) continue;
    if (state.parked()) {
      log_->info("resumed upload {} at part {} of {}", id, state.acknowledged_parts(), total);
      v1::UploadPart resume;
      auto* r = resume.mutable_resume();
      r->set_site(site_);
      r->set_generation(generation_);
      r->set_upload_id(id);
      r->set_from_part(state.acknowledged_parts());
      r->set_total_parts(static_cast<int64_t>(total));
      status = stream_upload(start, resume, weights, aux,
                             static_cast<uint64_t>(state.acknowledged_parts()), ack);
      if (status.error_code() != grpc::StatusCode::FAILED_PRECONDITION) continue;
    }
    // Expired there, or a restarted server: the whole update again.
    log_->warn("upload {} is not held by the server (expired, or it restarted): sending all "
               "{} parts again",
               id, total);
    status = stream_upload(start, first, weights, aux, 0, ack);
  }
  return status;
}

void ServerConnection::upload(UploadStart start, const char* call, const v1::UploadPart& first,
                              std::span<const flare_named_tensor> weights,
                              std::span<const flare_named_tensor> aux) {
  v1::Ack ack;
  grpc::Status status = stream_upload(start, first, weights, aux, 0, ack);
  if (is_cut(status) && first.has_update() && !first.update().upload_id().empty())
    status = resume_upload(start, first, weights, aux, status, ack);
  check(status, call, &ack);
}

void ServerConnection::submit_initial_model(std::span<const flare_named_tensor> weights) {
  v1::UploadPart first;
  auto* header = first.mutable_initial();
  header->set_site(site_);
  header->set_generation(generation_);
  header->set_num_tensors(static_cast<int32_t>(weights.size()));
  upload(&v1::FlareServer::Stub::SubmitInitialModel, "SubmitInitialModel", first, weights, {});
}

void ServerConnection::submit_update(v1::UpdateHeader& header,
                                     std::span<const flare_named_tensor> weights,
                                     std::span<const flare_named_tensor> aux) {
  header.set_site(site_);
  header.set_generation(generation_);
  header.set_num_weights(static_cast<int32_t>(weights.size()));
  header.set_num_aux(static_cast<int32_t>(aux.size()));
  header.set_upload_id(random_upload_id());
  v1::UploadPart first;
  *first.mutable_update() = header;
  upload(&v1::FlareServer::Stub::SubmitUpdate, "SubmitUpdate", first, weights, aux);
}

template <class Message>
void ServerConnection::send(Rpc<Message> rpc, const char* call, Message& message,
                            std::chrono::milliseconds deadline) {
  message.set_site(site_);
  message.set_generation(generation_);
  v1::Ack ack;
  auto ctx = context_with(deadline);
  check(((*stub_).*rpc)(ctx.get(), message, &ack), call, &ack);
}

void ServerConnection::submit_evaluation(v1::Evaluation& evaluation) {
  send(&v1::FlareServer::Stub::SubmitEvaluation, "SubmitEvaluation", evaluation,
       answer_timeout_);
}

void ServerConnection::report_progress(v1::Progress& progress) {
  progress.set_site(site_);
  progress.set_generation(generation_);
  v1::Ack ack;
  auto ctx = context_with(std::min<std::chrono::milliseconds>(std::chrono::seconds(5),
                                                              answer_timeout_));
  (void)stub_->ReportProgress(ctx.get(), progress, &ack);
}

void ServerConnection::send_heartbeat() {
  v1::Heartbeat beat;
  send(&v1::FlareServer::Stub::SendHeartbeat, "SendHeartbeat", beat, answer_timeout_);
}

bool ServerConnection::report_metrics(v1::MetricBatch& batch) {
  batch.set_site(site_);
  batch.set_generation(generation_);
  v1::Ack ack;
  auto ctx = context_with(std::min<std::chrono::milliseconds>(std::chrono::seconds(5),
                                                              answer_timeout_));
  return stub_->ReportMetrics(ctx.get(), batch, &ack).ok() && ack.accepted();
}

void ServerConnection::report_failure(v1::Failure& failure) {
  failure.set_site(site_);
  v1::Ack ack;
  auto ctx = context_with(answer_timeout_);
  check(stub_->ReportFailure(ctx.get(), failure, &ack), "ReportFailure", &ack);
}

void ServerConnection::refuse_job(int node_rank, const std::string& reason) {
  v1::Refusal refusal;
  refusal.set_site(site_);
  refusal.set_node_rank(node_rank);
  refusal.set_reason(reason);
  v1::Ack ack;
  auto ctx = context_with(answer_timeout_);
  check(stub_->RefuseJob(ctx.get(), refusal, &ack), "RefuseJob", &ack);
}

}  // namespace flare::transport
