// Forwards the trainer's progress and logs: progress goes from rank 0 to the
// server (throttled) and, on every rank, to the heartbeat; logs go to this
// rank's log. Reports go out from a thread of their own, the latest one
// first: a slow or stopped server never holds up training.
#pragma once

#include <chrono>
#include <condition_variable>
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

class ProgressRelay {
 public:
  // Both borrowed; either may be null.
  ProgressRelay(transport::ServerConnection* server, heartbeat::HeartbeatFile* heartbeat);
  ProgressRelay(const ProgressRelay&) = delete;
  ProgressRelay& operator=(const ProgressRelay&) = delete;
  ~ProgressRelay();  // waits for a report in flight
  host::HostCallbacks callbacks(std::shared_ptr<spdlog::logger> log);
  // Progress reports carry the round `session` is working on.
  void follow(const WorkerSession& session) { session_ = &session; }

 private:
  void report(std::string_view phase, int64_t epoch, int64_t step, int64_t total);
  void send_reports();  // the sender thread

  transport::ServerConnection* server_;
  heartbeat::HeartbeatFile* heartbeat_;
  const WorkerSession* session_ = nullptr;
  std::mutex mutex_;
  std::condition_variable queued_;
  std::chrono::steady_clock::time_point last_sent_{};
  std::optional<transport::v1::Progress> pending_;  // the latest report not yet sent
  bool closing_ = false;
  std::thread sender_;  // last: it uses the members above
};

}  // namespace flare::worker
