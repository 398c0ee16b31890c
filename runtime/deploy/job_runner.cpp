#include "deploy/job_runner.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <thread>
#include <vector>

#include "deploy/job_folder.hpp"
#include "storage/atomic_file.hpp"

namespace flare::deploy {

namespace {

// Whether a listening socket can be bound to host:port now (another program
// may hold a port of the range).
bool can_listen(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) != 0 || !found)
    return false;
  const int fd = ::socket(found->ai_family, found->ai_socktype | SOCK_CLOEXEC, 0);
  bool ok = false;
  if (fd >= 0) {
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    ok = ::bind(fd, found->ai_addr, found->ai_addrlen) == 0;
    ::close(fd);
  }
  ::freeaddrinfo(found);
  return ok;
}

}  // namespace

JobRunner::~JobRunner() {
  if (!running_.empty()) stop_all("the server is stopping", std::chrono::seconds(10));
}

std::optional<int> JobRunner::free_port() const {
  for (int port = settings_.first_port; port <= settings_.last_port; ++port) {
    bool taken = false;
    for (const auto& [id, job] : running_) taken = taken || job.port == port;
    if (!taken && can_listen(settings_.listen_host, port)) return port;
  }
  return std::nullopt;
}

void JobRunner::start(const JobRecord& job, int port, bool resume) {
  const JobFolder folder(settings_.jobs_dir / job.id);
  std::vector<std::string> argv = {settings_.server_program.string(),
                                   "--run-job",
                                   folder.root().string(),
                                   "--startup",
                                   settings_.startup_dir.string(),
                                   "--listen",
                                   settings_.listen_host,
                                   "--port",
                                   std::to_string(port)};
  for (const auto& dir : settings_.server.plugin_path) {
    argv.push_back("--plugin-path");
    argv.push_back(dir.string());
  }
  if (resume) argv.push_back("--resume");
  std::filesystem::create_directories(folder.log_file().parent_path());
  if (!resume) write_port(folder, port);  // before its sites are offered it
  running_.emplace(job.id, Running{common::ChildProcess(argv, folder.log_file()), port});
  table_.started(job.id, port);
  if (resume)
    log_.info("{} ('{}') resumed after round {} on its port {}", job.id, job.name,
              job.resumed_after_round, port);
  else
    log_.info("{} ('{}') started on port {} for {} site(s)", job.id, job.name, port,
              job.sites.size());
}

void JobRunner::resume(const JobRecord& job) {
  // An abort the killed server asked for, which its job never acted on, is
  // not this run's.
  std::error_code ec;
  std::filesystem::remove(JobFolder(settings_.jobs_dir / job.id).abort_file(), ec);
  try {
    start(job, job.port, /*resume=*/true);
  } catch (const std::exception& e) {
    table_.ended(job.id, JobState::failed,
                 std::string("its server process could not be started again: ") + e.what());
    log_.error("{}: its server process could not be started again: {}", job.id, e.what());
  }
}

void JobRunner::ask_to_abort(const std::string& id, Running& job, const std::string& reason) {
  try {
    storage::write_file_atomically(JobFolder(settings_.jobs_dir / id).abort_file(), reason);
  } catch (const std::exception& e) {
    log_.warn("{}: the abort's reason was not written ({}); aborting without it", id, e.what());
  }
  job.abort_reason = reason;
  job.process.signal(SIGTERM);
}

void JobRunner::record_outcome(const std::string& id, Running& job, const Outcome& outcome) {
  table_.ended(id, outcome.state, outcome.failure);
  log_.info("{} {}{}", id, state_name(outcome.state),
            outcome.failure.empty() ? "" : ": " + outcome.failure);
  job.recorded = true;
}

void JobRunner::record_end(const std::string& id, Running& job,
                           const common::ExitStatus& status) {
  if (const auto outcome = read_outcome(JobFolder(settings_.jobs_dir / id))) {
    record_outcome(id, job, *outcome);
  } else if (!job.abort_reason.empty()) {
    // Stopped before it could record anything (e.g. still starting): the
    // abort is what ended it.
    table_.ended(id, JobState::aborted, job.abort_reason);
    log_.info("{} aborted before its server recorded an outcome ({})", id, status.describe());
  } else {
    const std::string why = "the job's server process ended (" + status.describe() +
                            ") without recording an outcome; see " +
                            JobFolder(settings_.jobs_dir / id).log_file().string();
    table_.ended(id, JobState::failed, why);
    log_.error("{} failed: {}", id, why);
  }
}

void JobRunner::reap() {
  for (auto it = running_.begin(); it != running_.end();) {
    auto& job = it->second;
    // A job's outcome counts once written: its process still serves a few
    // seconds so its sites hear the end (job_process.cpp), keeping its port.
    if (!job.recorded)
      if (const auto outcome = read_outcome(JobFolder(settings_.jobs_dir / it->first)))
        record_outcome(it->first, job, *outcome);
    if (const auto status = job.process.poll()) {
      if (!job.recorded) record_end(it->first, job, *status);
      it = running_.erase(it);
    } else {
      ++it;
    }
  }
}

void JobRunner::tick() {
  for (const auto& [id, reason] : table_.take_abort_requests())
    if (auto it = running_.find(id); it != running_.end()) ask_to_abort(id, it->second, reason);
  reap();
  while (const auto job = table_.next_to_start()) {
    const auto port = free_port();
    if (!port) break;  // stays queued until a job ends
    try {
      start(*job, *port);
    } catch (const std::exception& e) {
      table_.ended(job->id, JobState::failed,
                   std::string("its server process could not start: ") + e.what());
      log_.error("{}: its server process could not start: {}", job->id, e.what());
    }
  }
}

void JobRunner::stop_all(const std::string& reason, std::chrono::milliseconds grace) {
  for (auto& [id, job] : running_) ask_to_abort(id, job, reason);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (!running_.empty() && std::chrono::steady_clock::now() < deadline) {
    reap();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::vector<common::ChildProcess*> left;
  for (auto& [id, job] : running_) left.push_back(&job.process);
  common::stop_together(left);
  reap();
}

}  // namespace flare::deploy
