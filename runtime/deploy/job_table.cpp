#include "deploy/job_table.hpp"

#include <algorithm>

namespace flare::deploy {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string_view state_name(JobState state) {
  switch (state) {
    case JobState::queued: return "queued";
    case JobState::running: return "running";
    case JobState::finished: return "finished";
    case JobState::failed: return "failed";
    case JobState::aborted: return "aborted";
  }
  return "unknown";
}

JobTable::JobTable(std::chrono::milliseconds online_for) : online_for_(online_for) {}

std::string JobTable::reserve_id() {
  std::lock_guard lock(mutex_);
  return "job-" + std::to_string(next_id_++);
}

JobRecord JobTable::add(JobRecord job) {
  std::lock_guard lock(mutex_);
  job.state = JobState::queued;
  if (job.submitted_at == 0) job.submitted_at = now_seconds();
  jobs_.push_back(job);
  ++version_;
  changed_.notify_all();
  return job;
}

void JobTable::restore(JobRecord job) {
  std::lock_guard lock(mutex_);
  jobs_.push_back(std::move(job));
}

std::vector<JobRecord> JobTable::list() const {
  std::lock_guard lock(mutex_);
  return jobs_;
}

std::optional<JobRecord> JobTable::find(const std::string& id) const {
  std::lock_guard lock(mutex_);
  for (const auto& job : jobs_)
    if (job.id == id) return job;
  return std::nullopt;
}

std::optional<JobRecord> JobTable::request_abort(const std::string& id, const std::string& reason,
                                                 std::string& why) {
  std::lock_guard lock(mutex_);
  for (auto& job : jobs_) {
    if (job.id != id) continue;
    if (job.ended()) {
      why = job.id + " has already ended (" + std::string(state_name(job.state)) + ")";
      return std::nullopt;
    }
    if (job.state == JobState::queued) {
      job.state = JobState::aborted;
      job.failure = reason;
      job.ended_at = now_seconds();
    } else {
      job.abort_reason = reason;
    }
    ++version_;
    changed_.notify_all();
    return job;
  }
  why = "no job " + id;
  return std::nullopt;
}

bool JobTable::online_locked(const std::string& site, int nodes) const {
  const auto now = Clock::now();
  for (int node = 0; node < nodes; ++node) {
    const auto it = nodes_.find({site, node});
    if (it == nodes_.end() || now - it->second.last_poll > online_for_) return false;
  }
  return true;
}

bool JobTable::busy_locked(const std::string& site) const {
  for (const auto& job : jobs_)
    if (job.state == JobState::running &&
        std::find(job.sites.begin(), job.sites.end(), site) != job.sites.end())
      return true;
  for (const auto& [key, node] : nodes_)
    if (key.first == site && !node.running.empty()) return true;
  return false;
}

std::string JobTable::blocker_locked(const JobRecord& job) const {
  for (const auto& site : job.sites) {
    const auto nodes = job.nodes.count(site) ? job.nodes.at(site) : 1;
    if (!online_locked(site, nodes))
      return site + (nodes > 1 ? " (all " + std::to_string(nodes) + " nodes)" : "") +
             " is not online";
    if (busy_locked(site)) return site + " is running another job";
  }
  return "";
}

std::string JobTable::waiting_for(const std::string& id) const {
  std::lock_guard lock(mutex_);
  for (const auto& job : jobs_)
    if (job.id == id && job.state == JobState::queued) return blocker_locked(job);
  return "";
}

std::optional<Offer> JobTable::poll(const std::string& site, int node_rank,
                                    const std::set<std::string>& running_jobs,
                                    std::chrono::milliseconds max_wait) {
  std::unique_lock lock(mutex_);
  const auto node = std::make_pair(site, node_rank);
  const auto deadline = Clock::now() + max_wait;
  nodes_[node].running = running_jobs;
  // Being online (or idle again) may be what a queued job waits for: the
  // runner looks again. Once per poll, not per wake-up: pollers would wake
  // each other for ever.
  ++version_;
  changed_.notify_all();
  for (;;) {
    nodes_[node].last_poll = Clock::now();
    for (const auto& job : jobs_) {
      if (job.state != JobState::running || job.port == 0) continue;
      if (std::find(job.sites.begin(), job.sites.end(), site) == job.sites.end()) continue;
      if (!offered_.insert({job.id, node}).second) continue;
      // A restarted server offered nothing yet, but the node's client of a
      // resumed job still runs and reconnects by itself.
      if (running_jobs.count(job.id)) continue;
      return Offer{job.id, job.job_toml, job.port};
    }
    const auto seen = version_;
    if (!changed_.wait_until(lock, deadline, [&] { return version_ != seen; })) {
      nodes_[node].last_poll = Clock::now();
      return std::nullopt;
    }
  }
}

std::optional<JobRecord> JobTable::next_to_start() {
  std::lock_guard lock(mutex_);
  for (const auto& job : jobs_)
    if (job.state == JobState::queued && blocker_locked(job).empty()) return job;
  return std::nullopt;
}

void JobTable::started(const std::string& id, int port) {
  std::lock_guard lock(mutex_);
  for (auto& job : jobs_)
    if (job.id == id) {
      job.state = JobState::running;
      job.port = port;
      job.started_at = now_seconds();
    }
  ++version_;
  changed_.notify_all();
}

void JobTable::ended(const std::string& id, JobState state, const std::string& failure) {
  std::lock_guard lock(mutex_);
  for (auto& job : jobs_)
    if (job.id == id) {
      job.state = state;
      job.failure = failure;
      job.ended_at = now_seconds();
      job.abort_reason.clear();
    }
  ++version_;
  changed_.notify_all();
}

std::vector<std::pair<std::string, std::string>> JobTable::take_abort_requests() {
  std::lock_guard lock(mutex_);
  std::vector<std::pair<std::string, std::string>> requests;
  for (auto& job : jobs_)
    if (job.state == JobState::running && !job.abort_reason.empty()) {
      requests.emplace_back(job.id, job.abort_reason);
      job.abort_reason.clear();
    }
  return requests;
}

void JobTable::wait_for_change(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  const auto seen = version_;
  changed_.wait_for(lock, timeout, [&] { return version_ != seen; });
}

}  // namespace flare::deploy
