#include "transport/server_connection.hpp"

#include <algorithm>
#include <optional>
#include <cstdio>
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

}  // namespace

grpc::ChannelArguments channel_arguments(std::chrono::milliseconds answer_timeout) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);  // a part of the global model
  const auto half = std::max<std::chrono::milliseconds>(answer_timeout / 2, kMinKeepaliveInterval);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, static_cast<int>(half.count()));
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, static_cast<int>(half.count()));
  // A task poll and a model upload send no data for a while: keep pinging.
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
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

ReceivedTask ServerConnection::next_task() {
  v1::TaskRequest req;
  req.set_site(site_);
  req.set_generation(generation_);
  auto ctx = context_with(kModelCallDeadline);
  auto reader = stub_->GetTask(ctx.get(), req);
  ReceivedTask received;
  v1::TaskPart part;
  bool has_task = false;
  std::string malformed;
  transport::OwnedTensorsSink sink;
  std::optional<ModelStreamReader> model;
  // Every part is read, also after a malformed one, so the call ends cleanly.
  while (reader->Read(&part)) {
    if (!malformed.empty()) continue;
    try {
      if (part.has_task() && !has_task) {
        has_task = true;
        received.task = std::move(*part.mutable_task());
        model.emplace(sink, static_cast<size_t>(std::max(0, received.task.num_tensors())));
      } else if (!has_task) {
        malformed = "a model part came before the task";
      } else if (part.has_tensor()) {
        model->tensor(part.tensor());
      } else if (part.has_data()) {
        model->data(part.data());
      } else {
        malformed = "an empty or second task part";
      }
    } catch (const MalformedTensor& e) {
      malformed = e.what();
    }
  }
  check(reader->Finish(), "GetTask");
  try {
    if (malformed.empty() && !has_task) malformed = "no task";
    if (malformed.empty()) model->finish();
  } catch (const MalformedTensor& e) {
    malformed = e.what();
  }
  if (!malformed.empty())
    throw TransportError("GetTask: the server at " + address_ + " sent a malformed task: " + malformed);
  received.model = std::move(sink.tensors());
  return received;
}

void ServerConnection::upload(UploadStart start, const char* call, const v1::UploadPart& first,
                              std::span<const flare_named_tensor> weights,
                              std::span<const flare_named_tensor> aux) {
  v1::Ack ack;
  auto ctx = context_with(kModelCallDeadline);
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
    sent = writer->Write(first) && write_tensors(weights, false, wire_encoding_, emit) &&
           write_tensors(aux, true, wire_encoding_, emit);
  } catch (...) {  // a value the wire dtype cannot carry: the upload is called off
    ctx->TryCancel();
    (void)writer->Finish();
    throw;
  }
  if (sent) writer->WritesDone();
  check(writer->Finish(), call, &ack);
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
