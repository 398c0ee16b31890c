#include "client/worker_group.hpp"

#include <algorithm>
#include <cstdio>
#include <thread>

#include "common/logging.hpp"

namespace flare::client {

namespace {

constexpr int kLogTailLines = 20;

std::string seconds_text(double s) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f", s);
  return buf;
}

}  // namespace

WorkerGroup::WorkerGroup(const GroupLaunch& launch, const std::atomic<bool>& stop)
    : launch_(launch) {
  heartbeats_.reserve(launch.devices);
  ranks_.reserve(launch.devices);
  // Starting many ranks on a loaded machine takes long: a stop request must
  // not wait for all of them.
  for (int local = 0; local < launch.devices && !stop; ++local) {
    const std::string rank = std::to_string(launch.global_rank(local));
    const auto work_dir = launch.work_dir / launch.site / ("rank" + rank);
    std::filesystem::create_directories(work_dir);
    const auto heartbeat = work_dir / "heartbeat";
    heartbeats_.push_back(heartbeat::HeartbeatFile::create(heartbeat));
    std::vector<std::string> argv{
        launch.worker_program.string(),
        "--job", launch.job_file.string(),
        "--site", launch.site,
        "--site-index", std::to_string(launch.site_index),
        "--num-sites", std::to_string(launch.num_sites),
        "--rank", rank,
        "--world-size", std::to_string(launch.world_size()),
        "--local-rank", std::to_string(local),
        "--local-world-size", std::to_string(launch.devices),
        "--master-addr", launch.master_addr,
        "--master-port", std::to_string(launch.master_port),
        "--threads", std::to_string(launch.threads_per_rank),
        "--work-dir", work_dir.string(),
        "--heartbeat", heartbeat.string(),
        "--generation", std::to_string(launch.generation),
        "--backend", launch.backend,
        "--cuda-device",
        std::to_string(launch.cuda_ids.empty() ? -1 : launch.cuda_ids.at(local))};
    if (!launch.trainer_sha256.empty()) {
      for (const std::string& a : {std::string("--trainer-file"), launch.trainer_file.string(),
                                   std::string("--trainer-sha256"), launch.trainer_sha256})
        argv.push_back(a);
    }
    // Only global rank 0 speaks to the server.
    if (launch.global_rank(local) == 0) {
      argv.push_back("--server");
      argv.push_back(launch.server);
      if (!launch.tls_dir.empty()) {
        argv.push_back("--tls-dir");
        argv.push_back(launch.tls_dir.string());
      }
    }
    ranks_.emplace_back(argv, launch.log_dir / (launch.site + ".rank" + rank + ".log"));
  }
  stopped_since_.resize(ranks_.size());
}

WorkerGroup::~WorkerGroup() { stop_all(kStopGrace); }

Blame blame_for(const common::ExitStatus& status, const heartbeat::HeartbeatReading& heartbeat) {
  if (status.success()) return Blame::None;
  if (status.signal) return Blame::Signal;
  return heartbeat.failed_in_collective ? Blame::Collective : Blame::OwnError;
}

std::optional<RankFailure> WorkerGroup::find_failure() {
  const auto now = std::chrono::steady_clock::now();
  int blamed = -1;
  Blame blame = Blame::None;
  bool all_exited = true;
  for (size_t local = 0; local < ranks_.size(); ++local) {
    const auto status = ranks_[local].poll();
    all_exited = all_exited && status.has_value();
    if (!status) continue;
    const Blame b = blame_for(*status, heartbeats_[local].read());
    if (b > blame) blame = b, blamed = static_cast<int>(local);
  }
  std::optional<RankFailure> failure;
  if (blamed >= 0) {
    // When a crash takes its peers down with it, the rank that crashed is
    // the cause, not the ones whose collective broke: give it a moment.
    if (blame == Blame::Collective && !all_exited) {
      if (!collective_failure_seen_) collective_failure_seen_ = now;
      if (now - *collective_failure_seen_ < kPeerFailureSettle) return std::nullopt;
    }
    const auto heartbeat = heartbeats_[blamed].read();
    const auto status = *ranks_[blamed].poll();
    failure = RankFailure{launch_.global_rank(blamed), blame == Blame::Collective,
                          status.describe(), {}, status, std::nullopt};
    if (!heartbeat.fatal_error.empty()) failure->cause += ": " + heartbeat.fatal_error;
  } else {
    // A hang stalls the whole group: blame the rank quiet for longest.
    const std::chrono::duration<double> timeout(launch_.progress_timeout_s);
    double longest = 0;
    for (size_t local = 0; local < ranks_.size(); ++local) {
      const auto quiet = heartbeat::hung_for(heartbeats_[local].read(), now, timeout);
      if (!quiet || quiet->count() <= longest) continue;
      longest = quiet->count();
      blamed = static_cast<int>(local);
      failure = RankFailure{launch_.global_rank(blamed), false,
                            "no progress for " + seconds_text(longest) +
                                " s inside a task (progress_timeout_s = " +
                                seconds_text(launch_.progress_timeout_s) + ")",
                            {}, std::nullopt, longest};
    }
    // A stopped rank makes its peers wait in a collective: it is the cause.
    if (auto stopped = find_stopped_rank(now, longest)) {
      failure = std::move(stopped);
      blamed = failure->rank - launch_.global_rank(0);
    }
  }
  if (failure) {
    stop_all(kStopGrace);
    failure->log_tail = common::read_log_tail(ranks_[blamed].log_file(), kLogTailLines);
  }
  return failure;
}

std::optional<RankFailure> WorkerGroup::find_stopped_rank(
    std::chrono::steady_clock::time_point now, double group_stalled_s) {
  if (launch_.progress_timeout_s <= 0) return std::nullopt;  // hangs are not looked for
  const std::chrono::duration<double> timeout(launch_.progress_timeout_s);
  int blamed = -1;
  std::chrono::duration<double> longest{-1};
  for (size_t local = 0; local < ranks_.size(); ++local) {
    auto& since = stopped_since_[local];
    if (!ranks_[local].stopped()) {
      since.reset();
      continue;
    }
    if (!since) since = now;
    const std::chrono::duration<double> stopped_for = now - *since;
    if ((group_stalled_s > 0 || stopped_for >= timeout) && stopped_for > longest)
      longest = stopped_for, blamed = static_cast<int>(local);
  }
  if (blamed < 0) return std::nullopt;
  const double stall_s = std::max(longest.count(), group_stalled_s);
  return RankFailure{launch_.global_rank(blamed), false,
                     "stopped by a signal (SIGSTOP, SIGTSTP or a debugger) and not continued for " +
                         seconds_text(stall_s) + " s (progress_timeout_s = " +
                         seconds_text(launch_.progress_timeout_s) + ")",
                     {}, std::nullopt, stall_s};
}

std::optional<RankFailure> WorkerGroup::supervise(const std::atomic<bool>& stop) {
  for (;;) {
    if (auto failure = find_failure()) return failure;
    bool all_done = true;
    for (auto& r : ranks_) all_done = all_done && r.poll() && r.poll()->success();
    if (all_done) return std::nullopt;
    if (stop) {
      stop_all(kStopGrace);
      return std::nullopt;
    }
    std::this_thread::sleep_for(kPollInterval);
  }
}

void WorkerGroup::stop_all(std::chrono::milliseconds grace) {
  std::vector<common::ChildProcess*> ranks;
  for (auto& r : ranks_) ranks.push_back(&r);
  common::stop_together(ranks, grace);
}

}  // namespace flare::client
