#include "worker/heartbeat_sender.hpp"

namespace flare::worker {

HeartbeatSender::HeartbeatSender(transport::ServerConnection& server,
                                 std::chrono::milliseconds interval,
                                 std::shared_ptr<spdlog::logger> log)
    : server_(server), interval_(interval), log_(std::move(log)), thread_([this] { beat(); }) {}

HeartbeatSender::~HeartbeatSender() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  stopping_.notify_all();
  thread_.join();
}

std::optional<std::string> HeartbeatSender::dropped() const {
  std::lock_guard lock(mutex_);
  if (dropped_generation_ < 0 || dropped_generation_ != server_.generation()) return std::nullopt;
  return dropped_reason_;
}

int64_t HeartbeatSender::beats_sent() const {
  std::lock_guard lock(mutex_);
  return beats_sent_;
}

void HeartbeatSender::beat() {
  bool in_outage = false;  // a server that does not answer is logged once per outage
  std::unique_lock lock(mutex_);
  while (!stopping_.wait_for(lock, interval_, [&] { return stop_; })) {
    lock.unlock();
    const int64_t generation = server_.generation();
    try {
      server_.send_heartbeat();
      if (in_outage) log_->info("the server answers heartbeats again");
      in_outage = false;
      lock.lock();
      ++beats_sent_;
      continue;
    } catch (const transport::RegisterAgainError& e) {
      lock.lock();
      if (dropped_generation_ != generation)
        log_->warn("the server no longer knows this site (generation {}): {}", generation,
                   e.what());
      dropped_generation_ = generation;
      dropped_reason_ = e.what();
      continue;
    } catch (const std::exception& e) {
      if (!in_outage) log_->warn("heartbeat not delivered (retrying quietly): {}", e.what());
      in_outage = true;
    }
    lock.lock();
  }
}

}  // namespace flare::worker
