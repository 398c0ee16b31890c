#include "transport/server_connection.hpp"

#include <utility>

namespace flare::transport {

namespace {

// Calls that carry models get generous deadlines; the long poll a short one.
constexpr auto kModelCallDeadline = std::chrono::minutes(10);
constexpr auto kShortCallDeadline = std::chrono::seconds(30);

std::unique_ptr<grpc::ClientContext> context_with(std::chrono::seconds deadline) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + deadline);
  return ctx;
}

}  // namespace

grpc::ChannelArguments channel_arguments() {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  args.SetMaxSendMessageSize(kMaxMessageBytes);
  return args;
}

ServerConnection::ServerConnection(const std::string& address, std::string site)
    : address_(address),
      site_(std::move(site)),
      channel_(grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(),
                                         channel_arguments())),
      stub_(v1::FlareServer::NewStub(channel_)) {}

void ServerConnection::wait_until_reachable(std::chrono::milliseconds timeout) {
  if (!channel_->WaitForConnected(std::chrono::system_clock::now() + timeout)) {
    throw TransportError("cannot reach the server at " + address_ + " within " +
                         std::to_string(timeout.count()) + " ms");
  }
}

void ServerConnection::check(const grpc::Status& status, const char* call,
                             const v1::Ack* ack) const {
  if (!status.ok()) {
    throw TransportError(std::string(call) + " to the server at " + address_ +
                         " failed: " + status.error_message() + " (gRPC code " +
                         std::to_string(status.error_code()) + ")");
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
  auto ctx = context_with(kShortCallDeadline);
  check(stub_->Register(ctx.get(), req, &reply), "Register");
  generation_ = reply.generation();
  return reply;
}

v1::Task ServerConnection::next_task() {
  v1::TaskRequest req;
  req.set_site(site_);
  req.set_generation(generation_);
  v1::Task task;
  auto ctx = context_with(kModelCallDeadline);
  check(stub_->GetTask(ctx.get(), req, &task), "GetTask");
  return task;
}

template <class Message>
void ServerConnection::send(Rpc<Message> rpc, const char* call, Message& message,
                            std::chrono::seconds deadline) {
  message.set_site(site_);
  message.set_generation(generation_);
  v1::Ack ack;
  auto ctx = context_with(deadline);
  check(((*stub_).*rpc)(ctx.get(), message, &ack), call, &ack);
}

void ServerConnection::submit_initial_model(v1::InitialModel& model) {
  send(&v1::FlareServer::Stub::SubmitInitialModel, "SubmitInitialModel", model,
       kModelCallDeadline);
}

void ServerConnection::submit_update(v1::Update& update) {
  send(&v1::FlareServer::Stub::SubmitUpdate, "SubmitUpdate", update, kModelCallDeadline);
}

void ServerConnection::submit_evaluation(v1::Evaluation& evaluation) {
  send(&v1::FlareServer::Stub::SubmitEvaluation, "SubmitEvaluation", evaluation,
       kShortCallDeadline);
}

void ServerConnection::report_progress(v1::Progress& progress) {
  progress.set_site(site_);
  progress.set_generation(generation_);
  v1::Ack ack;
  auto ctx = context_with(std::chrono::seconds(5));
  (void)stub_->ReportProgress(ctx.get(), progress, &ack);
}

void ServerConnection::report_failure(v1::Failure& failure) {
  failure.set_site(site_);
  v1::Ack ack;
  auto ctx = context_with(kShortCallDeadline);
  check(stub_->ReportFailure(ctx.get(), failure, &ack), "ReportFailure", &ack);
}

}  // namespace flare::transport
