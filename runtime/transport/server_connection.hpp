// A site's connection to the server: the calls of flare.proto with deadlines,
// failures turned into TransportError naming the call and the server.
#pragma once

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>

#include <grpcpp/grpcpp.h>

#include "transport/flare.grpc.pb.h"

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

class ServerConnection {
 public:
  ServerConnection(const std::string& address, std::string site,
                   std::chrono::milliseconds answer_timeout = kDefaultAnswerTimeout);

  // Blocks until the server answers or `timeout` passes (then throws).
  void wait_until_reachable(std::chrono::milliseconds timeout);

  // Registers the site's worker group; the server hands it its generation,
  // which every later request carries, so the server can refuse an earlier
  // generation's answers.
  v1::RegisterReply register_site(int world_size);
  v1::Task next_task();  // long poll; may return WAIT
  void submit_initial_model(v1::InitialModel& model);
  void submit_update(v1::Update& update);
  void submit_evaluation(v1::Evaluation& evaluation);
  void report_progress(v1::Progress& progress);  // best effort: never throws
  void report_failure(v1::Failure& failure);  // throws when refused

  const std::string& site() const { return site_; }
  // The generation the server handed out at registration.
  int64_t generation() const { return generation_; }

 private:
  template <class Message>
  using Rpc = grpc::Status (v1::FlareServer::Stub::*)(grpc::ClientContext*, const Message&,
                                                       v1::Ack*);
  // Stamps this site and generation on `message`, sends it, checks the Ack.
  template <class Message>
  void send(Rpc<Message> rpc, const char* call, Message& message,
            std::chrono::milliseconds deadline);
  void check(const grpc::Status& status, const char* call, const v1::Ack* ack = nullptr) const;

  std::string address_;
  std::string site_;
  // Until registered, none: the server refuses requests stamped with it.
  int64_t generation_ = -1;
  std::chrono::milliseconds answer_timeout_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::FlareServer::Stub> stub_;
};

// A site's channel arguments: models can be large; keepalive pings every
// answer_timeout / 2, answered within answer_timeout / 2.
grpc::ChannelArguments channel_arguments(std::chrono::milliseconds answer_timeout);
constexpr int kMaxMessageBytes = 1 << 30;

}  // namespace flare::transport
