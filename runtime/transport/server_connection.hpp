// A site's connection to the server: the calls of flare.proto with deadlines,
// failures turned into TransportError naming the call and the server.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include <flare/plugin_abi.h>
#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include "tensor/owned_tensor.hpp"
#include "transport/flare.grpc.pb.h"
#include "transport/tls_settings.hpp"

namespace flare::transport {

class TransportError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The server answered that the job has ended (it finished, failed, or the
// server itself failed handling this call): not this site's failure. The
// site's next task says how the job ended.
class JobEndedError : public TransportError {
 public:
  using TransportError::TransportError;
};

// The server holds no registration of this site's group (it dropped the
// site after it fell silent, or the server restarted): register again.
class RegisterAgainError : public TransportError {
 public:
  using TransportError::TransportError;
};

// The server refused a result as late: the round it answers closed without
// it. Not a failure: the site goes on to its next task.
class LateResultError : public TransportError {
 public:
  using TransportError::TransportError;
};

// The server did not answer within server.answer_timeout_s, or cannot be
// reached: it may be restarting, and the site may try to reach it again.
class ServerUnreachableError : public TransportError {
 public:
  using TransportError::TransportError;
};

// How long a site waits for a server that does not answer (job spec:
// server.answer_timeout_s): the deadline of the calls without a model, and,
// for the long ones (a task poll, a model upload), keepalive pings every half
// of it that the server must acknowledge within the other half. A server
// process that is stopped or gone is noticed within this time, however long
// a model takes to send.
constexpr auto kDefaultAnswerTimeout = std::chrono::seconds(30);
// The shortest keepalive interval a site uses; the server accepts pings this
// often (rpc_service.cpp) instead of taking them for abuse.
constexpr auto kMinKeepaliveInterval = std::chrono::seconds(1);

// A task as a site receives it: TRAIN and EVALUATE carry the global model,
// streamed in (model_stream.hpp) and checked on the way.
struct ReceivedTask {
  v1::Task task;
  std::vector<tensor::OwnedTensor> model;
};

class ServerConnection {
 public:
  // Mutual TLS with `tls` (tls_settings.hpp); none: plaintext.
  ServerConnection(const std::string& address, std::string site,
                   std::chrono::milliseconds answer_timeout = kDefaultAnswerTimeout,
                   const std::optional<TlsSettings>& tls = std::nullopt);

  // Blocks until the server answers or `timeout` passes (then throws).
  void wait_until_reachable(std::chrono::milliseconds timeout);

  // Registers the site's worker group; the server hands it its generation,
  // which every later request carries, so the server can refuse an earlier
  // generation's answers.
  v1::RegisterReply register_site(int world_size);
  // A task's model download cut mid-way (a reset connection, a server that
  // stopped answering a moment) resumes after the parts already received,
  // for up to answer_timeout; the tensors received are kept.
  ReceivedTask next_task();  // long poll; may return WAIT
  // Models stream from the caller's views, a part at a time: the site never
  // holds a second copy, and a slow server holds the upload back. An update
  // cut mid-way resumes after the last part the server acknowledged (or
  // starts over when the server no longer holds it), for up to answer_timeout.
  void submit_initial_model(std::span<const flare_named_tensor> weights);
  void submit_update(v1::UpdateHeader& header, std::span<const flare_named_tensor> weights,
                     std::span<const flare_named_tensor> aux);
  void submit_evaluation(v1::Evaluation& evaluation);
  void report_progress(v1::Progress& progress);  // best effort: never throws
  // Tells the server this site is alive; throws RegisterAgainError when the
  // server dropped it, ServerUnreachableError when it does not answer.
  void send_heartbeat();
  // Best effort: false when the batch did not arrive (never throws).
  bool report_metrics(v1::MetricBatch& batch);
  void report_failure(v1::Failure& failure);  // throws when refused
  // This site's policy refuses the job (Refusal); throws when not delivered.
  void refuse_job(int node_rank, const std::string& reason);

  // Where resumed transfers are logged (default: spdlog's default logger).
  void set_log(std::shared_ptr<spdlog::logger> log) { log_ = std::move(log); }
  const std::string& site() const { return site_; }
  // The generation the server handed out at registration.
  int64_t generation() const { return generation_; }
  // How float32 tensors travel (the job's server.wire_dtype), from registration.
  v1::WireEncoding wire_encoding() const { return wire_encoding_; }

 private:
  template <class Message>
  using Rpc = grpc::Status (v1::FlareServer::Stub::*)(grpc::ClientContext*, const Message&,
                                                       v1::Ack*);
  // Stamps this site and generation on `message`, sends it, checks the Ack.
  template <class Message>
  void send(Rpc<Message> rpc, const char* call, Message& message,
            std::chrono::milliseconds deadline);
  void check(const grpc::Status& status, const char* call, const v1::Ack* ack = nullptr) const;
  // Streams `first` (the upload's header), then the tensors, as `call`.
  using UploadStart = std::unique_ptr<grpc::ClientWriter<v1::UploadPart>> (
      v1::FlareServer::Stub::*)(grpc::ClientContext*, v1::Ack*);
  void upload(UploadStart start, const char* call, const v1::UploadPart& first,
              std::span<const flare_named_tensor> weights,
              std::span<const flare_named_tensor> aux);
  // One stream of `first`, then the tensors after the first `skip_parts`.
  grpc::Status stream_upload(UploadStart start, const v1::UploadPart& first,
                             std::span<const flare_named_tensor> weights,
                             std::span<const flare_named_tensor> aux, uint64_t skip_parts,
                             v1::Ack& ack);
  // After a cut `status`: resumes the update `first` (with an upload id)
  // until it ends otherwise or answer_timeout passed; the last status.
  grpc::Status resume_upload(UploadStart start, const v1::UploadPart& first,
                             std::span<const flare_named_tensor> weights,
                             std::span<const flare_named_tensor> aux, grpc::Status status,
                             v1::Ack& ack);
  struct TaskDownload;
  grpc::Status receive_task(const v1::TaskRequest& request, TaskDownload& download,
                            bool wait_for_ready);

  std::string address_;
  std::string site_;
  // Until registered, none: the server refuses requests stamped with it.
  // Atomic: the heartbeat thread stamps it while rank 0 registers again.
  std::atomic<int64_t> generation_ = -1;
  v1::WireEncoding wire_encoding_ = v1::RAW;
  std::chrono::milliseconds answer_timeout_;
  bool tls_;  // a refused certificate looks like an unreachable server: say so
  std::shared_ptr<spdlog::logger> log_ = spdlog::default_logger();
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::FlareServer::Stub> stub_;
};

// A site's channel arguments: keepalive pings every answer_timeout / 2,
// answered within answer_timeout / 2. Models stream in parts of
// kChunkBytes, so gRPC's default message limits need no raising.
grpc::ChannelArguments channel_arguments(std::chrono::milliseconds answer_timeout);

// A status no server answers on purpose: the stream was cut (a reset
// connection, a server gone a moment), and a transfer may resume.
bool is_cut(const grpc::Status& status);

}  // namespace flare::transport
