// Forged and faulty requests through the real gRPC service on loopback, sent
// with a raw stub so each field is what a hostile or buggy sender chose: a
// request is refused whole (INVALID_ARGUMENT when malformed, with what was
// wrong) or applied whole, the job goes on, and what sites wrote reaches the
// terminal printable.
#include <doctest/doctest.h>

#include <limits>

#include <grpcpp/grpcpp.h>

#include "controller_job.hpp"
#include "server/rpc_service.hpp"
#include "transport/flare.grpc.pb.h"
#include "transport/tensor_codec.hpp"

using namespace flare;
namespace v1 = flare::transport::v1;
using grpc::StatusCode;
using namespace std::chrono_literals;

namespace {

// A served job and a raw stub that stamps whatever site and generation a test says.
struct ForgedRequests : testing::ControllerJob {
  explicit ForgedRequests(std::vector<std::string> sites, bool terminal = false)
      : ControllerJob(sites, 1, nullptr, 3600s, "val_acc", terminal) {}
  server::RpcService service{controller};
  server::RpcServer rpc{service, "127.0.0.1", 0};
  std::unique_ptr<v1::FlareServer::Stub> stub =
      v1::FlareServer::NewStub(grpc::CreateChannel(rpc.address(), grpc::InsecureChannelCredentials()));

  // The generation the server handed out (the status must be OK).
  int64_t register_site(const std::string& site) {
    v1::RegisterRequest request;
    request.set_site(site);
    request.set_world_size(1);
    v1::RegisterReply reply;
    grpc::ClientContext context;
    const auto status = stub->Register(&context, request, &reply);
    REQUIRE_MESSAGE(status.ok(), status.error_message());
    return reply.generation();
  }
  grpc::Status get_task(const std::string& site, int64_t generation, v1::Task* task) {
    v1::TaskRequest request;
    request.set_site(site);
    request.set_generation(generation);
    grpc::ClientContext context;
    return stub->GetTask(&context, request, task);
  }
  v1::Task task(const std::string& site, int64_t generation = 0) {
    v1::Task task;
    const auto status = get_task(site, generation, &task);
    REQUIRE_MESSAGE(status.ok(), status.error_message());
    return task;
  }
  // Sends `message` through `rpc` as `site`, `generation`.
  template <class Message, class Rpc>
  grpc::Status send(Rpc rpc, Message message, const std::string& site, int64_t generation,
                    v1::Ack* ack) {
    message.set_site(site);
    message.set_generation(generation);
    grpc::ClientContext context;
    return ((*stub).*rpc)(&context, message, ack);
  }
  // Two sites registered, round 1 handed to both, from a global model of 0.
  void start_round() {
    for (const std::string site : {"s1", "s2"}) REQUIRE(register_site(site) == 0);
    REQUIRE(task("s1").kind() == v1::Task::SEND_INITIAL_MODEL);
    v1::InitialModel initial;
    put(initial.mutable_model(), weights(0));
    v1::Ack ack;
    REQUIRE(send(&v1::FlareServer::Stub::SubmitInitialModel, initial, "s1", 0, &ack).ok());
    REQUIRE(ack.accepted());
    for (const std::string site : {"s1", "s2"}) REQUIRE(task(site).kind() == v1::Task::TRAIN);
  }
  static void put(v1::Model* model, std::vector<tensor::OwnedTensor> tensors) {
    transport::encode_tensors(tensor::views_of(tensors), model->mutable_weights());
  }
  static v1::Update update(float w) {
    v1::Update u;
    u.set_round(0);
    u.set_num_samples(10);
    u.set_eval_json(R"({"validation": {"accuracy": 0.5, "num_samples": 10}})");
    put(u.mutable_model(), weights(w));
    return u;
  }
  grpc::Status submit(const v1::Update& u, const std::string& site, v1::Ack* ack) {
    return send(&v1::FlareServer::Stub::SubmitUpdate, u, site, 0, ack);
  }
};

// Checks that `status` is INVALID_ARGUMENT and its message contains every one of `parts`.
void check_invalid(const grpc::Status& status, std::initializer_list<std::string> parts) {
  CHECK_MESSAGE(status.error_code() == StatusCode::INVALID_ARGUMENT,
                "gRPC code " << status.error_code() << ": " << status.error_message());
  for (const auto& part : parts)
    CHECK_MESSAGE(status.error_message().find(part) != std::string::npos,
                  "expected '" << part << "' in: " << status.error_message());
}

}  // namespace

TEST_CASE("updates refused for what they carry count for nothing, and the good one completes the round") {
  ForgedRequests job({"s1", "s2"});
  job.start_round();
  v1::Ack ack;

  // Each of these was folded into the aggregate before (or instead of) being refused.
  auto counted_samples = ForgedRequests::update(100);
  counted_samples.set_eval_json(R"({"validation": {"accuracy": 0.5, "num_samples": "10"}})");
  check_invalid(job.submit(counted_samples, "s1", &ack), {"eval_json", "s1", "num_samples"});
  auto string_loss = ForgedRequests::update(100);
  string_loss.set_train_metrics_json(R"({"train_loss": "high"})");
  check_invalid(job.submit(string_loss, "s1", &ack),
                {"train_metrics_json from s1", "'train_loss' is \"high\", not a finite number"});
  auto wrong_shape = ForgedRequests::update(100);
  wrong_shape.mutable_model()->clear_weights();
  ForgedRequests::put(wrong_shape.mutable_model(),
                      {{"w", {kDLFloat, 32, 1}, {7}, std::vector<std::byte>(7 * sizeof(float))}});
  check_invalid(job.submit(wrong_shape, "s1", &ack),
                {"update from s1 for round 1", "tensor 'w' has shape [7], the global model's is [1]"});
  auto overflowing = ForgedRequests::update(100);
  overflowing.mutable_model()->mutable_weights(0)->add_shape(1LL << 40);
  overflowing.mutable_model()->mutable_weights(0)->add_shape(1LL << 40);
  overflowing.mutable_model()->mutable_weights(0)->clear_data();
  check_invalid(job.submit(overflowing, "s1", &ack),
                {"model.weights[0] from s1", "negative or too large"});
  auto negative = ForgedRequests::update(100);
  negative.set_num_samples(-10);
  check_invalid(job.submit(negative, "s1", &ack), {"num_samples from s1", "-10"});

  for (const auto& [site, w] : {std::pair{"s1", 1.0f}, std::pair{"s2", 3.0f}}) {
    REQUIRE(job.submit(ForgedRequests::update(w), site, &ack).ok());
    CHECK_MESSAGE(ack.accepted(), ack.message());
  }
  const auto final_task = job.task("s1");
  REQUIRE(final_task.kind() == v1::Task::EVALUATE);
  // The mean of the two good updates only: nothing of the refused ones counted.
  CHECK(ForgedRequests::value_of(transport::decode_tensors(final_task.model().weights())) ==
        doctest::Approx(2));
}

TEST_CASE("an update the aggregator refuses is refused with its reason, and the round goes on") {
  ForgedRequests job({"s1", "s2"});
  job.start_round();
  v1::Ack ack;
  auto not_a_number = ForgedRequests::update(std::numeric_limits<float>::quiet_NaN());
  check_invalid(job.submit(not_a_number, "s1", &ack),
                {"update from s1 for round 1 refused by the plugin 'fedavg'", "accept"});
  for (const auto& [site, w] : {std::pair{"s1", 2.0f}, std::pair{"s2", 4.0f}}) {
    REQUIRE(job.submit(ForgedRequests::update(w), site, &ack).ok());
    CHECK_MESSAGE(ack.accepted(), ack.message());
  }
  CHECK(ForgedRequests::value_of(
            transport::decode_tensors(job.task("s2").model().weights())) == doctest::Approx(3));
}

TEST_CASE("requests claiming a generation the server never handed out are refused and take nothing over") {
  ForgedRequests job({"s1", "s2"});
  REQUIRE(job.register_site("s1") == 0);
  v1::Ack ack;
  // A second registration of a running group would take the site over.
  v1::RegisterRequest again;
  again.set_site("s1");
  again.set_world_size(1);
  v1::RegisterReply reply;
  grpc::ClientContext context;
  const auto registration = job.stub->Register(&context, again, &reply);
  CHECK(registration.error_code() == StatusCode::FAILED_PRECONDITION);
  CHECK_MESSAGE(registration.error_message().find("generation 0 is registered and running") !=
                    std::string::npos,
                registration.error_message());
  // A failure report of generation 99 once made the server supersede the real group.
  v1::Failure failure;
  failure.set_cause("forged");
  failure.set_restarting(true);
  REQUIRE(job.send(&v1::FlareServer::Stub::ReportFailure, failure, "s1", 99, &ack).ok());
  CHECK_FALSE(ack.accepted());
  CHECK_MESSAGE(ack.message().find("generation 99, which the server has not opened") !=
                    std::string::npos,
                ack.message());
  v1::Progress progress;
  progress.set_phase("train");
  REQUIRE(job.send(&v1::FlareServer::Stub::ReportProgress, progress, "s1", 99, &ack).ok());
  CHECK_FALSE(ack.accepted());
  v1::Task task;
  const auto forged_poll = job.get_task("s1", 99, &task);
  CHECK(forged_poll.error_code() == StatusCode::FAILED_PRECONDITION);
  CHECK_MESSAGE(forged_poll.error_message().find("generation 99, which the server has not handed "
                                                 "out") != std::string::npos,
                forged_poll.error_message());
  // The real group of generation 0 goes on.
  REQUIRE(job.register_site("s2") == 0);
  CHECK(job.task("s1").kind() == v1::Task::SEND_INITIAL_MODEL);
  CHECK(job.screen.str().find("rejoined") == std::string::npos);
}

TEST_CASE("a restarted worker group registers as the generation the server opened for it") {
  ForgedRequests job({"s1", "s2"});
  job.start_round();
  v1::Ack ack;
  v1::Failure failure;
  failure.set_cause("killed by signal 9 (SIGKILL)");
  failure.set_restarting(true);
  REQUIRE(job.send(&v1::FlareServer::Stub::ReportFailure, failure, "s1", 0, &ack).ok());
  REQUIRE_MESSAGE(ack.accepted(), ack.message());
  CHECK(job.register_site("s1") == 1);
  v1::Task task;
  const auto superseded = job.get_task("s1", 0, &task);
  CHECK(superseded.error_code() == StatusCode::FAILED_PRECONDITION);
  CHECK_MESSAGE(superseded.error_message().find("the site now runs generation 1") !=
                    std::string::npos,
                superseded.error_message());
  const auto again = job.task("s1", 1);
  CHECK(again.kind() == v1::Task::TRAIN);
  CHECK(again.round() == 0);
}

TEST_CASE("a progress report past its total is drawn clamped on a terminal; negative counts are refused") {
  ForgedRequests job({"s1", "s2"}, /*terminal=*/true);
  REQUIRE(job.register_site("s1") == 0);
  v1::Ack ack;
  v1::Progress progress;
  progress.set_phase("train\x1b[2J");
  progress.set_epoch(1);
  progress.set_step(12);
  progress.set_total(10);
  const auto past_total = job.send(&v1::FlareServer::Stub::ReportProgress, progress, "s1", 0, &ack);
  REQUIRE_MESSAGE(past_total.ok(), past_total.error_message());
  CHECK(ack.accepted());
  CHECK_MESSAGE(job.screen.str().ends_with("s1 round 1/1 train\\x1b[2J e1 [################] 100%"),
                job.screen.str());
  progress.set_step(-1);
  check_invalid(job.send(&v1::FlareServer::Stub::ReportProgress, progress, "s1", 0, &ack),
                {"step from s1", "-1"});
  // The display goes on: the next site's joining is drawn above the bar.
  REQUIRE(job.register_site("s2") == 0);
  CHECK(job.screen.str().ends_with("s2 joined with 1 worker ranks\n\r\x1b[2Ks1 round 1/1 "
                                   "train\\x1b[2J e1 [################] 100%"));
}

TEST_CASE("what a failure report says reaches the terminal without its control characters") {
  ForgedRequests job({"s1", "s2"});
  job.start_round();
  v1::Ack ack;
  v1::Failure failure;
  failure.set_cause("exit code 1: \x1b]0;pwned\x07\r");
  failure.set_log_tail("line one\n\x1b[1Aline two\n");
  failure.set_restarting(true);
  REQUIRE(job.send(&v1::FlareServer::Stub::ReportFailure, failure, "s1", 0, &ack).ok());
  REQUIRE_MESSAGE(ack.accepted(), ack.message());
  CHECK_MESSAGE(job.screen.str().find("s1 worker rank 0 failed: exit code 1: "
                                      "\\x1b]0;pwned\\x07\\x0d; restarting") != std::string::npos,
                job.screen.str());
  CHECK(job.screen.str().find('\x1b') == std::string::npos);
}
