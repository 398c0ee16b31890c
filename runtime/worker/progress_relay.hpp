// Forwards the trainer's progress and logs: progress goes from rank 0 to the
// server (throttled) and, on every rank, to the heartbeat; logs go to this
// rank's log.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>

#include <spdlog/spdlog.h>

#include "plugin_host/host_services.hpp"
#include "transport/server_connection.hpp"
#include "heartbeat/heartbeat.hpp"

namespace flare::worker {

class WorkerSession;

class ProgressRelay {
 public:
  // Both borrowed; either may be null.
  ProgressRelay(transport::ServerConnection* server, heartbeat::HeartbeatFile* heartbeat)
      : server_(server), heartbeat_(heartbeat) {}
  host::HostCallbacks callbacks(std::shared_ptr<spdlog::logger> log);
  // Progress reports carry the round `session` is working on.
  void follow(const WorkerSession& session) { session_ = &session; }

 private:
  void report(std::string_view phase, int64_t epoch, int64_t step, int64_t total);

  transport::ServerConnection* server_;
  heartbeat::HeartbeatFile* heartbeat_;
  const WorkerSession* session_ = nullptr;
  std::mutex mutex_;
  std::chrono::steady_clock::time_point last_sent_{};
};

}  // namespace flare::worker
