#include "worker/progress_relay.hpp"

#include "worker/worker_session.hpp"

namespace flare::worker {

namespace {
// Often enough for a live bar, rare enough to cost nothing.
constexpr auto kMinInterval = std::chrono::milliseconds(250);
}  // namespace

ProgressRelay::ProgressRelay(transport::ServerConnection* server,
                             heartbeat::HeartbeatFile* heartbeat)
    : server_(server), heartbeat_(heartbeat) {
  if (server_) sender_ = std::thread([this] { send_reports(); });
}

ProgressRelay::~ProgressRelay() {
  {
    std::lock_guard lock(mutex_);
    closing_ = true;
  }
  queued_.notify_all();
  if (sender_.joinable()) sender_.join();
}

void ProgressRelay::send_reports() {
  std::unique_lock lock(mutex_);
  for (;;) {
    queued_.wait(lock, [&] { return closing_ || pending_; });
    if (closing_) return;
    transport::v1::Progress progress = std::move(*pending_);
    pending_.reset();
    lock.unlock();
    server_->report_progress(progress);
    lock.lock();
  }
}

host::HostCallbacks ProgressRelay::callbacks(std::shared_ptr<spdlog::logger> log) {
  host::HostCallbacks cb;
  cb.log = [log](flare_log_level level, std::string_view message) {
    switch (level) {
      case FLARE_LOG_DEBUG: log->debug("{}", message); break;
      case FLARE_LOG_INFO: log->info("{}", message); break;
      case FLARE_LOG_WARN: log->warn("{}", message); break;
      default: log->error("{}", message); break;
    }
  };
  cb.metric = [log](std::string_view name, double value, int64_t step) {
    log->debug("metric {} = {} at step {}", name, value, step);
  };
  cb.progress = [this](std::string_view phase, int64_t epoch, int64_t step, int64_t total) {
    report(phase, epoch, step, total);
  };
  cb.cancelled = [] { return false; };
  return cb;
}

void ProgressRelay::report(std::string_view phase, int64_t epoch, int64_t step, int64_t total) {
  if (heartbeat_) heartbeat_->progress();  // lock-free: fine at every step
  if (!server_) return;
  std::lock_guard lock(mutex_);
  const auto now = std::chrono::steady_clock::now();
  if (step != total && now - last_sent_ < kMinInterval) return;
  last_sent_ = now;
  transport::v1::Progress p;
  p.set_round(session_ ? session_->current_round() : 0);
  p.set_phase(std::string(phase));
  p.set_epoch(epoch);
  p.set_step(step);
  p.set_total(total);
  pending_ = std::move(p);  // an older one not yet sent is stale
  queued_.notify_one();
}

}  // namespace flare::worker
