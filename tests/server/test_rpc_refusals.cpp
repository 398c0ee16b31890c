// Forged and faulty requests through the real gRPC service on loopback, sent
// with a raw stub so each field is what a hostile or buggy sender chose: a
// request is refused whole (INVALID_ARGUMENT when malformed, with what was
// wrong) or applied whole, the job goes on, and what sites wrote reaches the
// terminal printable.
#include <doctest/doctest.h>

#include <cstring>
#include <limits>
#include <optional>

#include <grpcpp/grpcpp.h>

#include "controller_job.hpp"
#include "server/rpc_service.hpp"
#include "transport/server_connection.hpp"
#include "transport/flare.grpc.pb.h"
#include "transport/model_stream.hpp"

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
  std::unique_ptr<v1::FlareServer::Stub> stub = v1::FlareServer::NewStub(grpc::CreateCustomChannel(
      rpc.address(), grpc::InsecureChannelCredentials(), transport::channel_arguments(30s)));

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
  // A task as served: its header and its model, read off the stream.
  struct Served {
    grpc::Status status;
    v1::Task task;
    std::vector<tensor::OwnedTensor> model;
  };
  Served fetch(const std::string& site, int64_t generation) {
    v1::TaskRequest request;
    request.set_site(site);
    request.set_generation(generation);
    grpc::ClientContext context;
    auto reader = stub->GetTask(&context, request);
    Served served;
    transport::OwnedTensorsSink sink;
    std::optional<transport::ModelStreamReader> model;
    v1::TaskPart part;
    while (reader->Read(&part)) {
      if (part.has_task()) {
        served.task = part.task();
        model.emplace(sink, served.task.num_tensors());
      } else if (part.has_tensor()) {
        model->tensor(part.tensor());
      } else {
        model->data(part.data());
      }
    }
    served.status = reader->Finish();
    if (model && served.status.ok()) model->finish();
    served.model = std::move(sink.tensors());
    return served;
  }
  grpc::Status get_task(const std::string& site, int64_t generation, v1::Task* task) {
    auto served = fetch(site, generation);
    *task = served.task;
    return served.status;
  }
  v1::Task task(const std::string& site, int64_t generation = 0) {
    const auto served = fetch(site, generation);
    REQUIRE_MESSAGE(served.status.ok(), served.status.error_message());
    return served.task;
  }
  // The value of the model site's next task carries.
  float task_value(const std::string& site) {
    const auto served = fetch(site, 0);
    REQUIRE_MESSAGE(served.status.ok(), served.status.error_message());
    return value_of(served.model);
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

  // An upload as parts a test may tamper with before sending.
  struct Upload {
    v1::UploadPart first;
    std::vector<v1::UploadPart> parts;
  };
  static std::vector<v1::UploadPart> parts_of(std::vector<tensor::OwnedTensor> tensors,
                                              bool aux = false) {
    std::vector<v1::UploadPart> parts;
    transport::write_tensors(tensor::views_of(tensors), aux, v1::RAW,
                             [&](const v1::TensorHeader* h, std::span<const std::byte> bytes) {
                               transport::set_part(parts.emplace_back(), h, bytes);
                               return true;
                             });
    return parts;
  }
  grpc::Status upload(std::unique_ptr<grpc::ClientWriter<v1::UploadPart>> (
                          v1::FlareServer::Stub::*rpc)(grpc::ClientContext*, v1::Ack*),
                      const Upload& u, v1::Ack* ack) {
    grpc::ClientContext context;
    auto writer = ((*stub).*rpc)(&context, ack);
    bool open = writer->Write(u.first);
    for (const auto& p : u.parts) open = open && writer->Write(p);
    if (open) writer->WritesDone();
    return writer->Finish();
  }
  // Two sites registered, round 1 handed to both, from `initial` (default a
  // global model of 0).
  void start_round(std::vector<tensor::OwnedTensor> initial = weights(0)) {
    for (const std::string site : {"s1", "s2"}) REQUIRE(register_site(site) == 0);
    REQUIRE(task("s1").kind() == v1::Task::SEND_INITIAL_MODEL);
    Upload u;
    u.first.mutable_initial()->set_site("s1");
    u.first.mutable_initial()->set_num_tensors(static_cast<int32_t>(initial.size()));
    u.parts = parts_of(std::move(initial));
    v1::Ack ack;
    const auto status = upload(&v1::FlareServer::Stub::SubmitInitialModel, u, &ack);
    REQUIRE_MESSAGE(status.ok(), status.error_message());
    REQUIRE(ack.accepted());
    for (const std::string site : {"s1", "s2"}) REQUIRE(task(site).kind() == v1::Task::TRAIN);
  }
  // An update of round 1 carrying `tensors` (default: "w" = w).
  static Upload update(float w, std::vector<tensor::OwnedTensor> tensors = {}) {
    if (tensors.empty()) tensors = weights(w);
    Upload u;
    auto* h = u.first.mutable_update();
    h->set_round(0);
    h->set_num_samples(10);
    h->set_eval_json(R"({"validation": {"accuracy": 0.5, "num_samples": 10}})");
    h->set_num_weights(static_cast<int32_t>(tensors.size()));
    u.parts = parts_of(std::move(tensors));
    return u;
  }
  grpc::Status submit(Upload u, const std::string& site, v1::Ack* ack, int64_t generation = 0) {
    u.first.mutable_update()->set_site(site);
    u.first.mutable_update()->set_generation(generation);
    return upload(&v1::FlareServer::Stub::SubmitUpdate, u, ack);
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
  counted_samples.first.mutable_update()->set_eval_json(
      R"({"validation": {"accuracy": 0.5, "num_samples": "10"}})");
  check_invalid(job.submit(counted_samples, "s1", &ack), {"eval_json", "s1", "num_samples"});
  auto string_loss = ForgedRequests::update(100);
  string_loss.first.mutable_update()->set_train_metrics_json(R"({"train_loss": "high"})");
  check_invalid(job.submit(string_loss, "s1", &ack),
                {"train_metrics_json from s1", "'train_loss' is \"high\", not a finite number"});
  auto wrong_shape = ForgedRequests::update(
      100, {{"w", {kDLFloat, 32, 1}, {7}, std::vector<std::byte>(7 * sizeof(float))}});
  check_invalid(job.submit(wrong_shape, "s1", &ack),
                {"update from s1 for round 1", "tensor 'w' has shape [7], the global model's is [1]"});
  auto overflowing = ForgedRequests::update(100);
  overflowing.parts[0].mutable_tensor()->add_shape(1LL << 40);
  overflowing.parts[0].mutable_tensor()->add_shape(1LL << 40);
  overflowing.parts.resize(1);
  check_invalid(job.submit(overflowing, "s1", &ack),
                {"update from s1 for round 1", "tensor 'w' has shape", "negative or too large"});
  auto negative = ForgedRequests::update(100);
  negative.first.mutable_update()->set_num_samples(-10);
  check_invalid(job.submit(negative, "s1", &ack), {"num_samples from s1", "-10"});

  for (const auto& [site, w] : {std::pair{"s1", 1.0f}, std::pair{"s2", 3.0f}}) {
    REQUIRE(job.submit(ForgedRequests::update(w), site, &ack).ok());
    CHECK_MESSAGE(ack.accepted(), ack.message());
  }
  const auto final_task = job.fetch("s1", 0);
  REQUIRE(final_task.task.kind() == v1::Task::EVALUATE);
  // The mean of the two good updates only: nothing of the refused ones counted.
  CHECK(ForgedRequests::value_of(final_task.model) == doctest::Approx(2));
}

TEST_CASE("an update the aggregator refuses is refused with its reason, and the round goes on") {
  ForgedRequests job({"s1", "s2"});
  job.start_round();
  v1::Ack ack;
  auto no_weight = ForgedRequests::update(5);
  no_weight.first.mutable_update()->set_num_samples(0);  // fedavg weighs by samples: > 0
  check_invalid(job.submit(no_weight, "s1", &ack),
                {"update from s1 for round 1 refused by the plugin 'fedavg'"});
  for (const auto& [site, w] : {std::pair{"s1", 2.0f}, std::pair{"s2", 4.0f}}) {
    REQUIRE(job.submit(ForgedRequests::update(w), site, &ack).ok());
    CHECK_MESSAGE(ack.accepted(), ack.message());
  }
  CHECK(job.task_value("s2") == doctest::Approx(3));
}

TEST_CASE("requests claiming a generation the server never handed out are refused and take nothing over") {
  ForgedRequests job({"s1", "s2"});
  REQUIRE(job.register_site("s1") == 0);
  v1::Ack ack;
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
  v1::MetricBatch metrics;
  auto* point = metrics.add_points();
  point->set_name("train_loss");
  point->set_value(0.5);
  REQUIRE(job.send(&v1::FlareServer::Stub::ReportMetrics, metrics, "s1", 99, &ack).ok());
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

namespace {

// A model of "w" [1] and "big", three parts long, every value `value`.
constexpr size_t kBig = transport::kChunkBytes / sizeof(float) * 2 + 17;
std::vector<tensor::OwnedTensor> big_model(float value) {
  auto model = testing::ControllerJob::weights(value);
  tensor::OwnedTensor big{"big", {kDLFloat, 32, 1}, {static_cast<int64_t>(kBig)}, {}};
  big.data.resize(kBig * sizeof(float));
  std::vector<float> values(kBig, value);
  std::memcpy(big.data.data(), values.data(), big.data.size());
  model.push_back(std::move(big));
  return model;
}

// Sets the last value of the upload's last data part.
void poison_last(ForgedRequests::Upload& u, float value) {
  auto* data = u.parts.back().mutable_data();
  std::memcpy(data->data() + data->size() - sizeof(float), &value, sizeof(float));
}

}  // namespace

TEST_CASE("an update refused in any of its chunks, the last too, leaves no trace; the round goes on") {
  ForgedRequests job({"s1", "s2"});
  job.start_round(big_model(0));
  v1::Ack ack;
  const auto bad = [] { return ForgedRequests::update(0, big_model(100)); };
  const std::string last = std::to_string(kBig - 1);

  auto nan_last = bad();
  poison_last(nan_last, std::numeric_limits<float>::quiet_NaN());
  check_invalid(job.submit(nan_last, "s1", &ack),
                {"update from s1 for round 1: tensor 'big' has a non-finite value (NaN or "
                 "infinity) at element " + last});
  auto inf_last = bad();
  poison_last(inf_last, -std::numeric_limits<float>::infinity());
  check_invalid(job.submit(inf_last, "s2", &ack),
                {"update from s2 for round 1: tensor 'big' has a non-finite value", last});
  auto renamed = bad();
  renamed.parts[2].mutable_tensor()->set_name("bigger");
  check_invalid(job.submit(renamed, "s1", &ack),
                {"update from s1 for round 1: tensor 'bigger' is not in the global model"});
  auto wide = bad();
  wide.parts[2].mutable_tensor()->set_dtype_bits(64);
  check_invalid(job.submit(wide, "s1", &ack),
                {"update from s1 for round 1: tensor 'big' is float64, the global model's is float32"});
  auto longer = bad();
  longer.parts[2].mutable_tensor()->set_shape(0, kBig + 1);
  check_invalid(job.submit(longer, "s1", &ack),
                {"update from s1 for round 1: tensor 'big' has shape [" + std::to_string(kBig + 1) +
                 "], the global model's is [" + std::to_string(kBig) + "]"});
  auto short_bytes = bad();
  short_bytes.parts.back().mutable_data()->resize(short_bytes.parts.back().data().size() - 4);
  check_invalid(job.submit(short_bytes, "s1", &ack),
                {"update from s1 for round 1: tensor 'big' has a data part of 64 bytes"});
  auto cut_off = bad();
  cut_off.parts.pop_back();
  check_invalid(job.submit(cut_off, "s1", &ack),
                {"update from s1 for round 1: tensor 'big' ended after 2097152 of its " +
                 std::to_string(kBig) + " elements"});
  // Refused by the round's state: answered, not counted.
  auto stale = bad();
  stale.first.mutable_update()->set_round(4);
  REQUIRE(job.submit(stale, "s1", &ack).ok());
  CHECK_FALSE(ack.accepted());
  CHECK_MESSAGE(ack.message().find("unexpected update from s1 for round 5") != std::string::npos,
                ack.message());
  REQUIRE(job.submit(bad(), "s1", &ack, /*generation=*/7).ok());
  CHECK_FALSE(ack.accepted());
  CHECK_MESSAGE(ack.message().find("generation 7") != std::string::npos, ack.message());

  for (const auto& [site, w] : {std::pair{"s1", 1.0f}, std::pair{"s2", 3.0f}}) {
    const auto status = job.submit(ForgedRequests::update(0, big_model(w)), site, &ack);
    REQUIRE_MESSAGE(status.ok(), status.error_message());
    CHECK_MESSAGE(ack.accepted(), ack.message());
  }
  // Exactly the mean of the two good updates, everywhere: nothing of the
  // refused ones (whose first chunks of 100s were folded before the refusal).
  const auto served = job.fetch("s1", 0);
  REQUIRE(served.task.kind() == v1::Task::EVALUATE);
  REQUIRE(served.model.size() == 2);
  CHECK(ForgedRequests::value_of(served.model) == 2.0f);
  std::vector<float> big(kBig);
  std::memcpy(big.data(), served.model[1].data.data(), big.size() * sizeof(float));
  size_t off = 0;
  for (float v : big) off += v != 2.0f;
  CHECK(off == 0);
}
