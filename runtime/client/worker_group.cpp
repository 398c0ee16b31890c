#include "client/worker_group.hpp"

#include <csignal>
#include <thread>

#include "common/local_host.hpp"
#include "common/logging.hpp"

namespace flare::client {

namespace {
constexpr int kLogTailLines = 20;
constexpr auto kStopGrace = std::chrono::milliseconds(3000);
}  // namespace

WorkerGroup::WorkerGroup(const GroupLaunch& launch) {
  const int master_port = common::free_tcp_port();
  ranks_.reserve(launch.devices);
  for (int rank = 0; rank < launch.devices; ++rank) {
    const auto work_dir = launch.work_dir / launch.site / ("rank" + std::to_string(rank));
    std::filesystem::create_directories(work_dir);
    std::vector<std::string> argv{
        launch.worker_program.string(),
        "--job", launch.job_file.string(),
        "--site", launch.site,
        "--site-index", std::to_string(launch.site_index),
        "--num-sites", std::to_string(launch.num_sites),
        "--rank", std::to_string(rank),
        "--world-size", std::to_string(launch.devices),
        "--local-rank", std::to_string(rank),
        "--local-world-size", std::to_string(launch.devices),
        "--master-addr", "127.0.0.1",
        "--master-port", std::to_string(master_port),
        "--threads", std::to_string(launch.threads_per_rank),
        "--work-dir", work_dir.string()};
    if (rank == 0) {
      argv.push_back("--server");
      argv.push_back(launch.server);
    }
    ranks_.emplace_back(argv,
                        launch.log_dir / (launch.site + ".rank" + std::to_string(rank) + ".log"));
  }
}

std::optional<RankFailure> WorkerGroup::supervise(const std::atomic<bool>& stop) {
  for (;;) {
    bool all_done = true;
    std::optional<RankFailure> failure;
    for (size_t rank = 0; rank < ranks_.size(); ++rank) {
      const auto status = ranks_[rank].poll();
      if (!status) {
        all_done = false;
        continue;
      }
      // When a crash takes its peers down with it in the same instant, the
      // rank killed by a signal is the cause, not the ones whose collective broke.
      if (!status->success() && (!failure || (status->signal && failure->cause.find("signal") ==
                                                                      std::string::npos))) {
        failure = RankFailure{static_cast<int>(rank), status->describe(), {}};
      }
    }
    if (failure) {
      stop_all(kStopGrace);
      failure->log_tail = common::read_log_tail(ranks_[failure->rank].log_file(), kLogTailLines);
      return failure;
    }
    if (all_done) return std::nullopt;
    if (stop) {
      stop_all(kStopGrace);
      return std::nullopt;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

void WorkerGroup::stop_all(std::chrono::milliseconds grace) {
  for (auto& r : ranks_) r.signal(SIGTERM);
  for (auto& r : ranks_) r.stop(grace);
}

}  // namespace flare::client
