// The site supervisor's worker group: one flare-worker process per device,
// started once for the whole job and watched. A rank that dies stops the
// whole group within a bounded time, and its cause and log tail are kept.
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/child_process.hpp"

namespace flare::client {

struct GroupLaunch {
  std::filesystem::path worker_program;  // flare-worker
  std::filesystem::path job_file;        // the resolved job spec
  std::string site;
  int site_index = 0;
  int num_sites = 1;
  int devices = 1;
  int threads_per_rank = 1;
  std::string server;                    // host:port
  std::filesystem::path log_dir;         // <site>.rank<r>.log
  std::filesystem::path work_dir;        // <site>/rank<r>/ beneath it
};

struct RankFailure {
  int rank = 0;
  std::string cause;     // "exit code 1", "killed by signal 9 (SIGKILL)"
  std::string log_tail;  // the rank's last log lines
};

class WorkerGroup {
 public:
  explicit WorkerGroup(const GroupLaunch& launch);

  // Blocks until every rank has exited cleanly (nullopt) or one failed (then
  // the others are stopped before it returns). `stop` ends the wait early and
  // stops the group.
  std::optional<RankFailure> supervise(const std::atomic<bool>& stop);
  // SIGTERM to every rank, SIGKILL after `grace`; reaps them all.
  void stop_all(std::chrono::milliseconds grace);

 private:
  std::vector<common::ChildProcess> ranks_;
};

}  // namespace flare::client
