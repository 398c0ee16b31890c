// The long-running server's main-thread half: starts each job the table says
// may start as a `flare-server --run-job` child on a free port of the
// job-port range, passes admins' aborts on (the reason into the job's
// folder, then SIGTERM), and records how each ended from its outcome.json
// as soon as it is written (or, when the process died without one, from its
// exit status). Children
// are started from the main thread: their parent-death signal follows it.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include <spdlog/spdlog.h>

#include "common/child_process.hpp"
#include "deploy/job_folder.hpp"
#include "deploy/job_submission.hpp"
#include "deploy/job_table.hpp"

namespace flare::deploy {

struct RunnerSettings {
  std::filesystem::path server_program;  // flare-server itself
  std::filesystem::path jobs_dir;        // <workspace>/jobs
  std::filesystem::path startup_dir;     // the server's startup folder
  std::string listen_host;
  int first_port = 0, last_port = 0;     // the job-port range, inclusive
  ServerSide server;
};

class JobRunner {
 public:
  JobRunner(JobTable& table, RunnerSettings settings, spdlog::logger& log)
      : table_(table), settings_(std::move(settings)), log_(log) {}
  ~JobRunner();

  // One pass: aborts, ended jobs, jobs to start. Never blocks for long.
  void tick();
  // Starts a job a restart found cut off (read_jobs: running, with its port
  // and resumed_after_round) again with --resume on its old port.
  void resume(const JobRecord& job);
  // Aborts every running job with `reason`, waits up to `grace` for them to
  // end, then kills the rest; records each.
  void stop_all(const std::string& reason, std::chrono::milliseconds grace);
  size_t running() const { return running_.size(); }

 private:
  struct Running {
    common::ChildProcess process;
    int port = 0;
    std::string abort_reason;  // asked to abort: why
    bool recorded = false;     // its outcome is in the table (it may still be serving)
  };
  std::optional<int> free_port() const;
  void start(const JobRecord& job, int port, bool resume = false);
  void reap();
  void record_outcome(const std::string& id, Running& job, const Outcome& outcome);
  // Its process ended: its outcome, else why it ended without one.
  void record_end(const std::string& id, Running& job, const common::ExitStatus& status);
  void ask_to_abort(const std::string& id, Running& job, const std::string& reason);

  JobTable& table_;
  RunnerSettings settings_;
  spdlog::logger& log_;
  std::map<std::string, Running> running_;
};

}  // namespace flare::deploy
