// The long-running server's jobs: what was submitted, by whom, and where each
// stands; which sites are online and what they run; which job starts next.
// gRPC threads (admins, sites' polls) and the main thread (which starts and
// reaps the job processes: see job_runner.hpp) share it; every method locks.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace flare::deploy {

// Seconds since the epoch, as job times are kept.
double now_seconds();

enum class JobState { queued, running, finished, failed, aborted };
std::string_view state_name(JobState state);

struct JobRecord {
  std::string id;    // "job-<n>": its folder under <workspace>/jobs/
  std::string name;  // job.name
  std::string job_toml;  // the resolved job, as the sites are offered it
  std::vector<std::string> sites;
  std::map<std::string, int> nodes;  // site -> its worker group's nodes
  int64_t num_rounds = 0;
  JobState state = JobState::queued;
  std::string failure;       // failed, aborted: why
  std::string submitted_by;  // the admin's name
  double submitted_at = 0, started_at = 0, ended_at = 0;  // seconds since the epoch
  int port = 0;              // running: its server's port
  // Started again after a server restart, from its checkpoint of this round
  // (-1: never resumed).
  int64_t resumed_after_round = -1;
  std::string abort_reason;  // set by an admin; the job runner acts on it
  bool ended() const {
    return state == JobState::finished || state == JobState::failed ||
           state == JobState::aborted;
  }
};

// A job one node of a site is to start.
struct Offer {
  std::string job_id;
  std::string job_toml;
  int port = 0;
};

class JobTable {
 public:
  // `online_for`: how long after its last poll a site's node counts as online.
  explicit JobTable(std::chrono::milliseconds online_for = std::chrono::seconds(15));

  // Admin-facing. A job's id is taken first (its folder is made under it),
  // then add() queues the checked job (job_submission.hpp) with that id. Ids
  // never repeat, also across restarts: set_next_id() with the first number
  // no folder has.
  std::string reserve_id();
  JobRecord add(JobRecord job);
  void set_next_id(int64_t next) { std::lock_guard lock(mutex_); next_id_ = next; }
  std::vector<JobRecord> list() const;
  std::optional<JobRecord> find(const std::string& id) const;
  // Queued: aborted at once. Running: the reason is recorded and the runner
  // stops its process. Ended: std::nullopt with `why` set.
  std::optional<JobRecord> request_abort(const std::string& id, const std::string& reason,
                                         std::string& why);
  // Jobs read back from disk at start-up (already ended).
  void restore(JobRecord job);

  // Site-facing. A node's poll: marks it online with the jobs it still runs,
  // and waits up to `max_wait` for an offer it has not had (a job it says it
  // runs is not offered again: a resumed job's sites still run it).
  std::optional<Offer> poll(const std::string& site, int node_rank,
                            const std::set<std::string>& running_jobs,
                            std::chrono::milliseconds max_wait);

  // Main thread (job_runner). The first queued job whose sites are all
  // online and idle, if any; `why_not` gets, for each queued job that waits,
  // what it waits for (shown to admins).
  std::optional<JobRecord> next_to_start();
  void started(const std::string& id, int port);
  void ended(const std::string& id, JobState state, const std::string& failure);
  // Running jobs with a pending abort reason (each handed out once).
  std::vector<std::pair<std::string, std::string>> take_abort_requests();
  // Wakes pollers (a job started) and the runner.
  void notify() { changed_.notify_all(); }
  // Waits up to `timeout` for a change (a submission, an abort, a poll).
  void wait_for_change(std::chrono::milliseconds timeout);
  // What a queued job waits for ("site-2 is offline"), or "".
  std::string waiting_for(const std::string& id) const;

 private:
  using Clock = std::chrono::steady_clock;
  struct NodeState {
    Clock::time_point last_poll{};
    std::set<std::string> running;  // jobs the node says it runs
  };
  bool online_locked(const std::string& site, int nodes) const;
  bool busy_locked(const std::string& site) const;
  std::string blocker_locked(const JobRecord& job) const;

  std::chrono::milliseconds online_for_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  int64_t next_id_ = 1;
  std::vector<JobRecord> jobs_;  // in submission order
  std::map<std::pair<std::string, int>, NodeState> nodes_;  // (site, node rank)
  std::set<std::pair<std::string, std::pair<std::string, int>>> offered_;  // (job, node)
  uint64_t version_ = 0;  // bumped on every change
};

}  // namespace flare::deploy
