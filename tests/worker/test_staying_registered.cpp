// Rank 0 against a scripted stand-in server that drops the site, refuses a
// late result, or is stopped and started again: the site keeps beating while
// it trains, registers again and goes on with its next task.
#include <doctest/doctest.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <spdlog/sinks/ostream_sink.h>

#include "plugin_fixtures.hpp"
#include "plugin_host/plugin_loader.hpp"
#include "transport/model_stream.hpp"
#include "worker/heartbeat_sender.hpp"
#include "worker/worker_session.hpp"

using namespace flare;
using namespace std::chrono_literals;
namespace v1 = transport::v1;
using Clock = std::chrono::steady_clock;

namespace {

struct Update {
  int64_t round, generation;
};

// Hands out the tasks it is given, one per request (a request waits for one);
// answers updates with the refusals it is given, then accepts them.
class ScriptedServer final : public v1::FlareServer::Service {
 public:
  explicit ScriptedServer(int64_t first_generation) : next_generation_(first_generation) {}

  void add_task(v1::Task::Kind kind, int64_t round) {
    std::lock_guard lock(mutex_);
    v1::Task task;
    task.set_kind(kind);
    task.set_round(round);
    task.set_num_rounds(5);
    tasks_.push_back(task);
    changed_.notify_all();
  }
  void refuse_next_update(grpc::StatusCode code) {
    std::lock_guard lock(mutex_);
    refusals_.push_back(code);
  }
  // Heartbeats of this generation are refused as unknown (a dropped site).
  void forget_generation(int64_t generation) {
    std::lock_guard lock(mutex_);
    forgotten_ = generation;
  }

  grpc::Status Register(grpc::ServerContext*, const v1::RegisterRequest*,
                        v1::RegisterReply* reply) override {
    std::lock_guard lock(mutex_);
    reply->set_generation(next_generation_++);
    ++registrations_;
    return grpc::Status::OK;
  }
  grpc::Status GetTask(grpc::ServerContext* ctx, const v1::TaskRequest*,
                       grpc::ServerWriter<v1::TaskPart>* writer) override {
    std::unique_lock lock(mutex_);
    ++task_requests_;
    changed_.notify_all();
    while (tasks_.empty()) {
      if (ctx->IsCancelled()) return grpc::Status::CANCELLED;
      changed_.wait_for(lock, 20ms);
    }
    v1::TaskPart part;
    *part.mutable_task() = tasks_.front();
    tasks_.pop_front();
    lock.unlock();
    const auto kind = part.task().kind();
    if (kind != v1::Task::TRAIN && kind != v1::Task::EVALUATE) {
      writer->Write(part);
      return grpc::Status::OK;
    }
    part.mutable_task()->set_num_tensors(1);
    writer->Write(part);
    float w[3] = {1, 2, 3};
    int64_t shape[1] = {3};
    const flare_named_tensor model = flare::tensor_view("w", w, {kDLFloat, 32, 1}, shape, 1);
    transport::write_tensors({&model, 1}, false, v1::RAW,
                             [&](const v1::TensorHeader* header, std::span<const std::byte> bytes) {
                               v1::TaskPart next;
                               transport::set_part(next, header, bytes);
                               return writer->Write(next);
                             });
    return grpc::Status::OK;
  }
  grpc::Status SubmitUpdate(grpc::ServerContext*, grpc::ServerReader<v1::UploadPart>* reader,
                            v1::Ack* ack) override {
    v1::UploadPart part;
    v1::UpdateHeader header;
    while (reader->Read(&part))
      if (part.has_update()) header = part.update();
    std::lock_guard lock(mutex_);
    if (!refusals_.empty()) {
      const auto code = refusals_.front();
      refusals_.pop_front();
      return grpc::Status(code, "scripted refusal");
    }
    updates_.push_back({header.round(), header.generation()});
    changed_.notify_all();
    ack->set_accepted(true);
    return grpc::Status::OK;
  }
  grpc::Status SubmitEvaluation(grpc::ServerContext*, const v1::Evaluation*,
                                v1::Ack* ack) override {
    ack->set_accepted(true);
    return grpc::Status::OK;
  }
  grpc::Status SendHeartbeat(grpc::ServerContext*, const v1::Heartbeat* beat,
                             v1::Ack* ack) override {
    std::lock_guard lock(mutex_);
    if (beat->generation() == forgotten_)
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "site-1 fell silent and was dropped");
    beats_.push_back(Clock::now());
    ack->set_accepted(true);
    return grpc::Status::OK;
  }

  // Waits until `n` task requests came (the site then waits in the n-th).
  bool wait_for_task_requests(int n) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, 20s, [&] { return task_requests_ >= n; });
  }
  int registrations() {
    std::lock_guard lock(mutex_);
    return registrations_;
  }
  std::vector<Update> updates() {
    std::lock_guard lock(mutex_);
    return updates_;
  }
  std::vector<Clock::time_point> beats() {
    std::lock_guard lock(mutex_);
    return beats_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  int64_t next_generation_;
  int64_t forgotten_ = -1;
  std::deque<v1::Task> tasks_;
  std::deque<grpc::StatusCode> refusals_;
  std::vector<Update> updates_;
  std::vector<Clock::time_point> beats_;
  int registrations_ = 0;
  int task_requests_ = 0;
};

// A ScriptedServer listening on `port` (0: any free one).
struct Served {
  ScriptedServer service;
  int port = 0;
  std::unique_ptr<grpc::Server> server;
  explicit Served(int64_t first_generation = 1, int on_port = 0) : service(first_generation) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:" + std::to_string(on_port),
                             grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&service);
    server = builder.BuildAndStart();
    REQUIRE(server);
  }
  ~Served() { stop(); }
  void stop() {
    if (server) server->Shutdown(std::chrono::system_clock::now() + 100ms);
    server.reset();
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port); }
};

// Rank 0 of a one-rank site-1 running the counter trainer, as flare-worker
// sets it up: registered, beating, and staying registered.
struct Site {
  std::ostringstream logged;
  std::shared_ptr<spdlog::logger> log = std::make_shared<spdlog::logger>(
      "site-1", std::make_shared<spdlog::sinks::ostream_sink_mt>(logged));
  host::SingleRankCollectives group;
  host::HostServices services{{}, &group};
  host::TrainerInstance trainer;
  transport::ServerConnection connection;
  std::optional<worker::HeartbeatSender> heartbeats;
  worker::WorkerSession session;

  Site(const std::string& address, const std::string& trainer_config,
       std::chrono::milliseconds heartbeat_interval = 1h,
       std::chrono::milliseconds reconnect_timeout = 20s)
      : trainer(host::load_plugin({"counter", {}, {FLARE_FIXTURE_DIR}}, FLARE_PLUGIN_TRAINER),
                trainer_config, testing::site_one(), services),
        connection(address, "site-1", 2s),
        session(trainer, group, &connection, log) {
    connection.wait_until_reachable(10s);
    connection.register_site(1);
    heartbeats.emplace(connection, heartbeat_interval, log);
    session.stay_registered(
        {.server_address = address, .timeout = reconnect_timeout, .heartbeats = &*heartbeats});
  }
  std::string log_text() {
    log->flush();
    return logged.str();
  }
};

}  // namespace

TEST_CASE("rank 0 keeps beating while train() sleeps three times the heartbeat timeout") {
  Served served;
  served.service.add_task(v1::Task::TRAIN, 0);
  served.service.add_task(v1::Task::FINISH, 0);
  constexpr auto kInterval = 100ms, kTimeout = 3 * kInterval;  // the job spec's least ratio
  Site site(served.address(), R"({"train_ms": 900})", kInterval);
  const auto started = Clock::now();
  CHECK(site.session.run().empty());
  const auto ended = Clock::now();
  REQUIRE(served.service.updates().size() == 1);
  const auto beats = served.service.beats();
  REQUIRE(beats.size() >= 6);  // ~9 in the 900 ms of training
  auto last = started;
  for (const auto& beat : beats) {
    CHECK(beat - last < kTimeout);  // never silent for a heartbeat timeout
    last = beat;
  }
  CHECK(ended - last < kTimeout);
}

TEST_CASE("the heartbeat thread stops at once, also in the middle of its interval") {
  Served served;
  transport::ServerConnection connection(served.address(), "site-1", 2s);
  connection.register_site(1);
  auto log = std::make_shared<spdlog::logger>("quiet");
  const auto started = Clock::now();
  {
    worker::HeartbeatSender heartbeats(connection, 1h, log);
    std::this_thread::sleep_for(50ms);
  }
  CHECK(Clock::now() - started < 2s);  // not the hour of its interval
}

TEST_CASE("a site the server dropped registers again and trains the next task") {
  Served served;
  served.service.add_task(v1::Task::TRAIN, 0);
  served.service.add_task(v1::Task::TRAIN, 1);
  served.service.add_task(v1::Task::FINISH, 1);
  served.service.refuse_next_update(grpc::StatusCode::NOT_FOUND);
  Site site(served.address(), "{}");
  CHECK(site.session.run().empty());
  CHECK(served.service.registrations() == 2);
  const auto updates = served.service.updates();
  REQUIRE(updates.size() == 1);  // round 1's, from the new registration
  CHECK(updates[0].round == 1);
  CHECK(updates[0].generation == 2);
  const auto log = site.log_text();
  CHECK(log.find("dropped by the server: SubmitUpdate refused: scripted refusal; "
                 "registered again as generation 2") != std::string::npos);
}

TEST_CASE("a drop the heartbeat heard of discards the round's work instead of uploading it") {
  Served served;
  served.service.add_task(v1::Task::TRAIN, 0);
  served.service.add_task(v1::Task::TRAIN, 1);
  served.service.add_task(v1::Task::FINISH, 1);
  served.service.forget_generation(1);
  Site site(served.address(), R"({"train_ms": 400})", 50ms);
  CHECK(site.session.run().empty());
  CHECK(served.service.registrations() == 2);
  const auto updates = served.service.updates();
  REQUIRE(updates.size() == 1);  // generation 1's round 0 never went up
  CHECK(updates[0].round == 1);
  CHECK(updates[0].generation == 2);
  CHECK(site.log_text().find("site-1 fell silent and was dropped; registered again as "
                             "generation 2") != std::string::npos);
}

TEST_CASE("a late result is logged and the site goes on with its next task") {
  Served served;
  served.service.add_task(v1::Task::TRAIN, 0);
  served.service.add_task(v1::Task::TRAIN, 1);
  served.service.add_task(v1::Task::FINISH, 1);
  served.service.refuse_next_update(grpc::StatusCode::OUT_OF_RANGE);
  Site site(served.address(), "{}");
  CHECK(site.session.run().empty());
  CHECK(served.service.registrations() == 1);
  const auto updates = served.service.updates();
  REQUIRE(updates.size() == 1);
  CHECK(updates[0].round == 1);
  CHECK(site.log_text().find("round 1: SubmitUpdate refused as late: scripted refusal; going "
                             "on with the next task") != std::string::npos);
}

TEST_CASE("a server stopped and started again on its port is reached again, and the site "
          "registers again") {
  auto first = std::make_unique<Served>();
  const int port = first->port;
  first->service.add_task(v1::Task::TRAIN, 0);
  Site site(first->address(), "{}");
  auto running = std::async(std::launch::async, [&] { return site.session.run(); });
  REQUIRE(first->service.wait_for_task_requests(2));  // round 0 done; waiting for the next
  CHECK(first->service.updates().size() == 1);
  first.reset();                      // the server is gone...
  std::this_thread::sleep_for(1s);    // ...for a while...
  Served second(100, port);           // ...and back, knowing nothing of the site
  second.service.add_task(v1::Task::TRAIN, 1);
  second.service.add_task(v1::Task::FINISH, 1);
  REQUIRE(running.wait_for(30s) == std::future_status::ready);
  CHECK(running.get().empty());
  CHECK(second.service.registrations() == 1);
  const auto updates = second.service.updates();
  REQUIRE(updates.size() == 1);
  CHECK(updates[0].round == 1);
  CHECK(updates[0].generation == 100);
  CHECK(site.log_text().find("reached the server again; registered again as generation 100") !=
        std::string::npos);
}

TEST_CASE("a server gone past the reconnect window fails the site, naming address and window") {
  auto served = std::make_unique<Served>();
  const std::string address = served->address();
  Site site(address, "{}", 1h, 1500ms);
  served.reset();
  const auto started = Clock::now();
  try {
    (void)site.session.run();
    FAIL("expected the session to give up");
  } catch (const std::runtime_error& e) {
    const std::string message = e.what();
    CHECK(message.find("cannot reach the server at " + address + " again within 1.5 s "
                       "(server.reconnect_timeout_s)") != std::string::npos);
  }
  CHECK(Clock::now() - started < 10s);
}
