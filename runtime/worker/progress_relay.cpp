#include "worker/progress_relay.hpp"

#include "worker/worker_session.hpp"

namespace flare::worker {

namespace {
using Clock = std::chrono::steady_clock;
// Often enough for a live bar, rare enough to cost nothing.
constexpr auto kMinInterval = std::chrono::milliseconds(250);
// A trainer reports a step's figures one call after another: points of the
// newest step wait this long for their siblings, so each step travels in one
// batch and becomes one line of metrics.jsonl.
constexpr auto kStepGrace = std::chrono::milliseconds(50);
// A full queue is logged at its first dropped point, then every this many.
constexpr int64_t kDropLogEvery = 10000;

bool same_step(const transport::v1::MetricPoint& a, const transport::v1::MetricPoint& b) {
  return a.step() == b.step() && a.round() == b.round();
}
}  // namespace

ProgressRelay::ProgressRelay(transport::ServerConnection* server,
                             heartbeat::HeartbeatFile* heartbeat, MetricBatching batching)
    : server_(server), heartbeat_(heartbeat), batching_(batching) {
  if (batching_.max_batch == 0) batching_.max_batch = 1;
  if (server_) sender_ = std::thread([this] { send_reports(); });
}

ProgressRelay::~ProgressRelay() {
  {
    std::lock_guard lock(mutex_);
    closing_ = true;
  }
  queued_.notify_all();
  if (sender_.joinable()) sender_.join();
  std::lock_guard lock(mutex_);
  if (dropped_ > 0 && log_)
    log_->warn("{} metric points never reached the server (see the warnings above)", dropped_);
}

void ProgressRelay::drop_locked(size_t count, const char* why) {
  const int64_t before = dropped_;
  dropped_ += static_cast<int64_t>(count);
  if (log_ && (before == 0 || before / kDropLogEvery != dropped_ / kDropLogEvery))
    log_->warn("dropped {} metric points so far: {}", dropped_, why);
}

transport::v1::MetricBatch ProgressRelay::take_batch_locked(Clock::time_point now) {
  size_t take = std::min(metrics_.size(), batching_.max_batch);
  auto trailing_run_start = [&](size_t end) {  // where the step of point end-1 begins
    size_t begin = end - 1;
    while (begin > 0 && same_step(metrics_[begin - 1].point, metrics_[end - 1].point)) --begin;
    return begin;
  };
  if (take < metrics_.size()) {
    // Cut at a step boundary, unless one step alone fills a batch.
    if (same_step(metrics_[take - 1].point, metrics_[take].point)) {
      const size_t begin = trailing_run_start(take);
      if (begin > 0) take = begin;
    }
  } else if (!closing_ && flushing_ == 0 && now - metrics_.back().at < kStepGrace) {
    take = trailing_run_start(take);  // the newest step may not be complete yet
  }
  transport::v1::MetricBatch batch;
  for (size_t i = 0; i < take; ++i) *batch.add_points() = std::move(metrics_[i].point);
  metrics_.erase(metrics_.begin(), metrics_.begin() + static_cast<std::ptrdiff_t>(take));
  return batch;
}

void ProgressRelay::send_reports() {
  std::unique_lock lock(mutex_);
  for (;;) {
    if (pending_ && !closing_) {
      transport::v1::Progress progress = std::move(*pending_);
      pending_.reset();
      lock.unlock();
      server_->report_progress(progress);
      lock.lock();
      continue;
    }
    const auto now = Clock::now();
    bool held_back = false;  // only the newest step is queued, still in its grace
    if (!metrics_.empty() && (closing_ || flushing_ > 0 ||
                              metrics_.size() >= batching_.max_batch || now >= next_batch_)) {
      transport::v1::MetricBatch batch = take_batch_locked(now);
      if (batch.points_size() > 0) {
        batch_in_flight_ = true;
        lock.unlock();
        const bool delivered = server_->report_metrics(batch);
        lock.lock();
        batch_in_flight_ = false;
        next_batch_ = Clock::now() + batching_.interval;
        if (!delivered) {
          drop_locked(batch.points_size(), "the server did not take them");
          // Leaving: a server that failed once is not waited for again.
          if (closing_) {
            drop_locked(metrics_.size(), "the server did not take them");
            metrics_.clear();
          }
        }
        sent_.notify_all();
        continue;
      }
      held_back = true;
    }
    if (closing_) return;
    if (metrics_.empty()) {
      sent_.notify_all();
      queued_.wait(lock);
    } else {
      // Due at the next batch, or (only the newest step waiting) once its grace ran out.
      queued_.wait_until(lock, held_back ? metrics_.back().at + kStepGrace : next_batch_);
    }
  }
}

bool ProgressRelay::flush_metrics(std::chrono::milliseconds timeout) {
  if (!server_) return true;
  std::unique_lock lock(mutex_);
  const int64_t dropped_before = dropped_;
  ++flushing_;
  queued_.notify_all();
  const bool done =
      sent_.wait_for(lock, timeout, [&] { return metrics_.empty() && !batch_in_flight_; });
  --flushing_;
  return done && dropped_ == dropped_before;
}

int64_t ProgressRelay::dropped_metrics() const {
  std::lock_guard lock(mutex_);
  return dropped_;
}

host::HostCallbacks ProgressRelay::callbacks(std::shared_ptr<spdlog::logger> log) {
  {
    std::lock_guard lock(mutex_);
    log_ = log;
  }
  host::HostCallbacks cb;
  cb.log = [log](flare_log_level level, std::string_view message) {
    switch (level) {
      case FLARE_LOG_DEBUG: log->debug("{}", message); break;
      case FLARE_LOG_INFO: log->info("{}", message); break;
      case FLARE_LOG_WARN: log->warn("{}", message); break;
      default: log->error("{}", message); break;
    }
  };
  cb.metric = [this, log](std::string_view name, double value, int64_t step) {
    if (server_)
      queue_metric(name, value, step);
    else
      log->debug("metric {} = {} at step {}", name, value, step);
  };
  cb.progress = [this](std::string_view phase, int64_t epoch, int64_t step, int64_t total) {
    report(phase, epoch, step, total);
  };
  cb.cancelled = [] { return false; };
  return cb;
}

void ProgressRelay::queue_metric(std::string_view name, double value, int64_t step) {
  std::lock_guard lock(mutex_);
  if (metrics_.size() >= batching_.max_queued) {
    metrics_.pop_front();
    drop_locked(1, "the server takes them slower than the trainer reports them");
  }
  QueuedPoint queued{{}, Clock::now()};
  queued.point.set_name(std::string(name));
  queued.point.set_value(value);
  queued.point.set_step(step);
  queued.point.set_round(session_ ? session_->current_round() : 0);
  queued.point.set_epoch(train_epoch_);
  metrics_.push_back(std::move(queued));
  // The sender sleeps until the next batch is due; only these change that.
  if (metrics_.size() == 1 || metrics_.size() == batching_.max_batch) queued_.notify_one();
}

void ProgressRelay::report(std::string_view phase, int64_t epoch, int64_t step, int64_t total) {
  if (heartbeat_) heartbeat_->progress();  // lock-free: fine at every step
  if (!server_) return;
  std::lock_guard lock(mutex_);
  if (phase == "train") train_epoch_ = epoch;
  const auto now = Clock::now();
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
