// Rank 0's relay of metrics to the server, against a stand-in server: points
// travel in a few batches (not a request each), each step's points in one,
// and a server that stalls or is gone never holds up the trainer's calls.
#include <doctest/doctest.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <spdlog/sinks/null_sink.h>

#include "worker/progress_relay.hpp"

using namespace flare;
using namespace std::chrono_literals;
namespace v1 = transport::v1;

namespace {

// Takes metric batches; while `stalled`, holds each call until released.
class StandInServer final : public v1::FlareServer::Service {
 public:
  grpc::Status ReportMetrics(grpc::ServerContext*, const v1::MetricBatch* batch,
                             v1::Ack* ack) override {
    std::unique_lock lock(mutex_);
    batches_.push_back(*batch);
    changed_.notify_all();
    changed_.wait(lock, [&] { return !stalled_; });
    ack->set_accepted(true);
    return grpc::Status::OK;
  }
  grpc::Status ReportProgress(grpc::ServerContext*, const v1::Progress*, v1::Ack* ack) override {
    ack->set_accepted(true);
    return grpc::Status::OK;
  }
  void stall(bool on) {
    std::lock_guard lock(mutex_);
    stalled_ = on;
    changed_.notify_all();
  }
  bool wait_for_batches(size_t n) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, 10s, [&] { return batches_.size() >= n; });
  }
  std::vector<v1::MetricBatch> batches() {
    std::lock_guard lock(mutex_);
    return batches_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<v1::MetricBatch> batches_;
  bool stalled_ = false;
};

struct Served {
  StandInServer service;
  int port = 0;
  std::unique_ptr<grpc::Server> server;
  Served() {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&service);
    server = builder.BuildAndStart();
    REQUIRE(server);
  }
  ~Served() {
    service.stall(false);
    server->Shutdown(std::chrono::system_clock::now() + 1s);
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port); }
};

std::shared_ptr<spdlog::logger> quiet_log() {
  return std::make_shared<spdlog::logger>("relay", std::make_shared<spdlog::sinks::null_sink_mt>());
}

}  // namespace

TEST_CASE("metrics reach the server in a few batches, each step's points in one batch") {
  Served served;
  transport::ServerConnection connection(served.address(), "site-1");
  worker::ProgressRelay relay(&connection, nullptr, {.interval = 1000ms, .max_batch = 512});
  const auto callbacks = relay.callbacks(quiet_log());
  constexpr int kSteps = 1000;
  for (int step = 1; step <= kSteps; ++step) {
    callbacks.metric("train_loss", 1.0 / step, step);
    callbacks.metric("images_per_s", 100.0 * step, step);
  }
  REQUIRE(relay.flush_metrics(10s));
  const auto batches = served.service.batches();
  CHECK(batches.size() <= 10);  // 2000 points: a handful of batches, not 2000 requests
  int64_t points = 0, previous_last_step = 0, expected_step = 1;
  for (const auto& batch : batches) {
    CHECK(batch.site() == "site-1");
    CHECK(batch.points_size() <= 512);
    REQUIRE(batch.points_size() > 0);
    CHECK(batch.points(0).step() != previous_last_step);  // no step split across batches
    for (int i = 0; i < batch.points_size(); ++i, ++points) {
      const auto& p = batch.points(i);
      CHECK(p.step() == expected_step);
      CHECK(p.name() == (i % 2 == 0 ? "train_loss" : "images_per_s"));
      if (i % 2 == 1) ++expected_step;
    }
    previous_last_step = batch.points(batch.points_size() - 1).step();
  }
  CHECK(points == 2 * kSteps);
  CHECK(relay.dropped_metrics() == 0);
}

TEST_CASE("a stalled server holds up no trainer call: the queue is bounded and drops the oldest") {
  Served served;
  transport::ServerConnection connection(served.address(), "site-1");
  worker::ProgressRelay relay(&connection, nullptr,
                              {.interval = 10ms, .max_batch = 100, .max_queued = 1000});
  const auto callbacks = relay.callbacks(quiet_log());
  served.service.stall(true);
  callbacks.metric("train_loss", 1.0, 1);
  callbacks.metric("train_loss", 1.0, 2);
  REQUIRE(served.service.wait_for_batches(1));  // the sender is now stuck in a call
  auto trainer = std::async(std::launch::async, [&] {
    for (int step = 3; step < 5003; ++step) callbacks.metric("train_loss", 1.0, step);
  });
  // Bounds a hang, not a speed: 5000 calls take microseconds each.
  REQUIRE(trainer.wait_for(5s) == std::future_status::ready);
  CHECK(served.service.batches().size() == 1);  // still stalled
  CHECK(relay.dropped_metrics() >= 3000);       // 5000 queued into room for 1000
  CHECK_FALSE(relay.flush_metrics(100ms));      // not delivered while the server stalls
  served.service.stall(false);
  CHECK(relay.flush_metrics(10s));
  // What was kept arrives: the newest points, in order.
  const auto batches = served.service.batches();
  const auto& last = batches.back();
  CHECK(last.points(last.points_size() - 1).step() == 5002);
}

TEST_CASE("a server that is gone costs the trainer nothing; its points are counted as dropped") {
  int port = 0;
  {
    Served gone;
    port = gone.port;
  }
  transport::ServerConnection connection("127.0.0.1:" + std::to_string(port), "site-1", 2000ms);
  worker::ProgressRelay relay(&connection, nullptr, {.interval = 10ms});
  const auto callbacks = relay.callbacks(quiet_log());
  for (int step = 1; step <= 100; ++step) callbacks.metric("train_loss", 1.0, step);
  CHECK_FALSE(relay.flush_metrics(10s));
  CHECK(relay.dropped_metrics() == 100);
}
