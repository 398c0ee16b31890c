// The site supervisor's worker group on one node: one flare-worker process
// per local device, started once per job (or per restart) and watched. A rank
// that dies or stops making progress stops the node's whole group within a
// bounded time (kPollInterval + kStopGrace after the cause is seen), and its
// cause and log tail are kept. A rank stopped by a signal (SIGSTOP) makes no
// progress either: it is blamed for the group's stall, not the ranks waiting
// on it.
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/child_process.hpp"
#include "heartbeat/heartbeat.hpp"

namespace flare::client {

// How often the supervisor looks at its ranks, and how long a rank gets to
// exit after SIGTERM before SIGKILL.
constexpr auto kPollInterval = std::chrono::milliseconds(50);
constexpr auto kStopGrace = std::chrono::milliseconds(3000);
// A rank that failed inside a collective usually reports its peer's failure;
// the supervisor waits this long for the peer's own exit before blaming it.
constexpr auto kPeerFailureSettle = std::chrono::milliseconds(500);

// How strongly a failed rank's exit points at the cause: a signal beats the
// rank's own error, which beats an error inside a collective.
enum class Blame { None = 0, Collective = 1, OwnError = 2, Signal = 3 };
Blame blame_for(const common::ExitStatus& status, const heartbeat::HeartbeatReading& heartbeat);

struct GroupLaunch {
  std::filesystem::path worker_program;  // flare-worker
  std::filesystem::path job_file;        // the resolved job spec
  std::string site;
  int site_index = 0;
  int num_sites = 1;
  int devices = 1;                       // ranks on this node
  int nnodes = 1;                        // nodes the site's group spans
  int node_rank = 0;
  std::string master_addr = "127.0.0.1"; // rendezvous (global rank 0's host)
  int master_port = 0;
  int threads_per_rank = 1;
  std::string backend = "gloo";          // collectives: gloo | nccl
  std::vector<int> cuda_ids;             // one CUDA device per local rank; empty: CPU
  int64_t generation = 0;                // restarts so far
  double progress_timeout_s = 600;       // <= 0: hangs are not detected
  std::string server;                    // host:port
  std::filesystem::path tls_dir;         // this site's TLS folder; empty: plaintext
  std::filesystem::path log_dir;         // <site>.rank<global rank>.log
  std::filesystem::path work_dir;        // <site>/rank<global rank>/ beneath it
  // The trainer file the site's policy verified and its SHA-256, which each
  // rank checks again as it loads it; empty: the site has no policy.
  std::filesystem::path trainer_file;
  std::string trainer_sha256;

  int world_size() const { return nnodes * devices; }
  int global_rank(int local_rank) const { return node_rank * devices + local_rank; }
};

struct RankFailure {
  int rank = 0;          // global rank
  bool in_collective = false;  // a collective failed: perhaps a peer's fault
  std::string cause;     // "exit code 1: <the rank's error>", "killed by signal 9 (SIGKILL)",
                         // "no progress for 2.1 s (progress_timeout_s = 2)", "stopped ..."
  std::string log_tail;  // the rank's last log lines
  // How it ended, as data: its exit status, or how long it was quiet.
  std::optional<common::ExitStatus> exit;
  std::optional<double> hang_s;
};

class WorkerGroup {
 public:
  // Starts the ranks one after another; once `stop` is set it starts no more
  // (supervise then stops those already started).
  WorkerGroup(const GroupLaunch& launch, const std::atomic<bool>& stop);
  WorkerGroup(const WorkerGroup&) = delete;
  WorkerGroup& operator=(const WorkerGroup&) = delete;
  // Stops every rank still running, all at once (bounded by kStopGrace).
  ~WorkerGroup();

  // Blocks until every rank has exited cleanly (nullopt) or one failed (then
  // the others are stopped before it returns). `stop` ends the wait early and
  // stops the group.
  std::optional<RankFailure> supervise(const std::atomic<bool>& stop);
  // SIGTERM to every rank, SIGKILL after `grace`; reaps them all.
  void stop_all(std::chrono::milliseconds grace);

 private:
  std::optional<RankFailure> find_failure();
  // The rank that holds the group up by being stopped: one stopped for
  // progress_timeout_s, or, when the group has stalled (a busy rank made no
  // progress for `group_stalled_s` > 0), any stopped rank, since the hung
  // ones most likely wait on it.
  std::optional<RankFailure> find_stopped_rank(std::chrono::steady_clock::time_point now,
                                               double group_stalled_s);

  std::optional<std::chrono::steady_clock::time_point> collective_failure_seen_;
  GroupLaunch launch_;
  std::vector<heartbeat::HeartbeatFile> heartbeats_;  // one per local rank
  std::vector<common::ChildProcess> ranks_;
  // Since when each rank has been seen stopped (by a signal) without a break.
  std::vector<std::optional<std::chrono::steady_clock::time_point>> stopped_since_;
};

}  // namespace flare::client
