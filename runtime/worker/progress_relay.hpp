// Forwards the trainer's progress, metrics and logs: progress and metrics go
// from rank 0 to the server and, on every rank, progress to the heartbeat;
// logs go to this rank's log. Reports go out from a thread of their own: a
// slow or stopped server never holds up training. Progress is throttled to
// the latest report; metrics are queued and sent in batches, at most about
// once per MetricBatching::interval (sooner when max_batch points wait).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include <spdlog/spdlog.h>

#include "plugin_host/host_services.hpp"
#include "transport/server_connection.hpp"
#include "heartbeat/heartbeat.hpp"

namespace flare::worker {

class WorkerSession;

struct MetricBatching {
  std::chrono::milliseconds interval{1000};  // between two batches
  size_t max_batch = 512;                    // points per batch (the server takes 4096)
  // A server that takes none: beyond this many points the oldest are dropped
  // (counted, logged), so a stalled server costs bounded memory.
  size_t max_queued = 100000;
};

class ProgressRelay {
 public:
  // Both borrowed; either may be null.
  ProgressRelay(transport::ServerConnection* server, heartbeat::HeartbeatFile* heartbeat,
                MetricBatching batching = {});
  ProgressRelay(const ProgressRelay&) = delete;
  ProgressRelay& operator=(const ProgressRelay&) = delete;
  ~ProgressRelay();  // sends what is queued (giving up at the first failure)
  host::HostCallbacks callbacks(std::shared_ptr<spdlog::logger> log);
  // Reports carry the round `session` is working on.
  void follow(const WorkerSession& session) { session_ = &session; }
  // Sends every queued metric now and waits (up to `timeout`) until the
  // server has them: before an update goes, so a round's figures reach the
  // server before the round can end. False when some were not delivered.
  bool flush_metrics(std::chrono::milliseconds timeout);
  // Points dropped so far (a full queue, or the server did not take them).
  int64_t dropped_metrics() const;

 private:
  struct QueuedPoint {
    transport::v1::MetricPoint point;
    std::chrono::steady_clock::time_point at;
  };
  void report(std::string_view phase, int64_t epoch, int64_t step, int64_t total);
  void queue_metric(std::string_view name, double value, int64_t step);
  void send_reports();  // the sender thread
  // The points ready to go now (a step's points travel together), or none.
  transport::v1::MetricBatch take_batch_locked(std::chrono::steady_clock::time_point now);
  // When the sender has to look at the metrics again.
  std::chrono::steady_clock::time_point metrics_due_locked() const;
  void drop_locked(size_t count, const char* why);

  transport::ServerConnection* server_;
  heartbeat::HeartbeatFile* heartbeat_;
  MetricBatching batching_;
  const WorkerSession* session_ = nullptr;
  std::shared_ptr<spdlog::logger> log_;
  mutable std::mutex mutex_;
  std::condition_variable queued_;  // something for the sender
  std::condition_variable sent_;    // the sender delivered (or dropped) metrics
  std::chrono::steady_clock::time_point last_sent_{};
  std::optional<transport::v1::Progress> pending_;  // the latest report not yet sent
  int64_t train_epoch_ = 0;  // of the latest training progress report
  std::deque<QueuedPoint> metrics_;
  std::chrono::steady_clock::time_point next_batch_{};
  int flushing_ = 0;         // callers waiting in flush_metrics
  bool batch_in_flight_ = false;
  int64_t dropped_ = 0;
  bool closing_ = false;
  std::thread sender_;  // last: it uses the members above
};

}  // namespace flare::worker
