// Rank 0's heartbeats to the server, from a thread of their own: a site busy
// in a long train() or a slow model load still tells the server it is alive
// (server.heartbeat_interval_s), so it is never dropped for being busy.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include <spdlog/spdlog.h>

#include "transport/server_connection.hpp"

namespace flare::worker {

class HeartbeatSender {
 public:
  // Beats every `interval` until destroyed; `server` is borrowed.
  HeartbeatSender(transport::ServerConnection& server, std::chrono::milliseconds interval,
                  std::shared_ptr<spdlog::logger> log);
  HeartbeatSender(const HeartbeatSender&) = delete;
  HeartbeatSender& operator=(const HeartbeatSender&) = delete;
  ~HeartbeatSender();  // stops at once, also mid-interval

  // The server's reason when it refused a heartbeat of the connection's
  // current generation as unknown (it dropped the site): the session
  // registers again rather than send work the server will refuse. A refusal
  // of an earlier generation (one registered again since) is no news.
  std::optional<std::string> dropped() const;
  int64_t beats_sent() const;

 private:
  void beat();  // the thread

  transport::ServerConnection& server_;
  std::chrono::milliseconds interval_;
  std::shared_ptr<spdlog::logger> log_;
  mutable std::mutex mutex_;
  std::condition_variable stopping_;
  bool stop_ = false;
  int64_t beats_sent_ = 0;
  int64_t dropped_generation_ = -1;  // the generation the server no longer knows
  std::string dropped_reason_;
  std::thread thread_;  // last: it uses the members above
};

}  // namespace flare::worker
