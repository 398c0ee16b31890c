#include "deploy/job_folder.hpp"

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "cli/resume_point.hpp"
#include "deploy/job_submission.hpp"
#include "storage/atomic_file.hpp"

namespace flare::deploy {

namespace fs = std::filesystem;

namespace {

std::optional<nlohmann::json> read_json(const fs::path& file) {
  std::ifstream in(file);
  if (!in) return std::nullopt;
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
}

std::optional<JobState> parse_state(const std::string& name) {
  for (auto state : {JobState::queued, JobState::running, JobState::finished, JobState::failed,
                     JobState::aborted})
    if (state_name(state) == name) return state;
  return std::nullopt;
}

// "job-12" -> 12; anything else -> 0.
int64_t job_number(const std::string& id) {
  if (!id.starts_with("job-")) return 0;
  try {
    return std::stoll(id.substr(4));
  } catch (const std::exception&) {
    return 0;
  }
}

}  // namespace

void write_outcome(const JobFolder& folder, const Outcome& outcome) {
  const nlohmann::json j = {{"state", state_name(outcome.state)}, {"failure", outcome.failure}};
  storage::write_file_atomically(folder.outcome_file(), j.dump(2) + "\n");
}

std::optional<Outcome> read_outcome(const JobFolder& folder) {
  const auto j = read_json(folder.outcome_file());
  if (!j || !j->is_object()) return std::nullopt;
  const auto state = parse_state(j->value("state", ""));
  if (!state) return std::nullopt;
  return Outcome{*state, j->value("failure", "")};
}

void write_port(const JobFolder& folder, int port) {
  storage::write_file_atomically(folder.port_file(), std::to_string(port) + "\n");
}

std::optional<int> read_port(const JobFolder& folder) {
  std::ifstream in(folder.port_file());
  int port = 0;
  if (!(in >> port) || port < 1 || port > 65535) return std::nullopt;
  return port;
}

// A job the server's stop cut off: resumable on its port, or failed, saying why.
void cut_off(const JobFolder& folder, JobRecord& job) {
  const auto scan = cli::newest_whole_checkpoint(folder.checkpoint_dir());
  const auto port = read_port(folder);
  job.state = JobState::failed;
  if (!scan.round)
    job.failure = "the server stopped before the job ended, with nothing to resume: " +
                  cli::why_no_checkpoint(scan, folder.checkpoint_dir());
  else if (!port)
    job.failure = "the server stopped before the job ended, and its port was not recorded (" +
                  folder.port_file().string() + ")";
  else {
    job.state = JobState::running;
    job.port = *port;
    job.resumed_after_round = *scan.round;
  }
}

void create_job_folder(const JobFolder& folder, const JobRecord& job) {
  fs::create_directories(folder.root().parent_path());
  fs::create_directory(folder.root());
  fs::permissions(folder.root(), fs::perms::owner_all);
  storage::write_file_atomically(folder.job_file(), job.job_toml);
  const nlohmann::json submission = {{"submitted_by", job.submitted_by},
                                     {"submitted_at", job.submitted_at}};
  storage::write_file_atomically(folder.submission_file(), submission.dump(2) + "\n");
}

int64_t rounds_done(const JobFolder& folder, size_t num_sites) {
  std::ifstream in(folder.metrics_file());
  std::map<int64_t, size_t> sites_in_round;
  int64_t done = 0;
  std::string line;
  while (std::getline(in, line)) {
    try {
      const auto j = nlohmann::json::parse(line);
      const auto kind = j.value("kind", "");
      if (kind == "site") ++sites_in_round[j.value("round", int64_t{0})];
      if (kind == "job") done = std::max(done, j.value("rounds_completed", int64_t{0}));
    } catch (const nlohmann::json::exception&) {
      // A line still being written: the next listing reads it whole.
    }
  }
  for (const auto& [round, sites] : sites_in_round)
    if (sites >= num_sites) done = std::max(done, round);
  return done;
}

std::vector<JobRecord> read_jobs(const fs::path& jobs_dir, int64_t& next_id) {
  std::vector<JobRecord> jobs;
  next_id = 1;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(jobs_dir, ec)) {
    const std::string id = entry.path().filename().string();
    const int64_t number = job_number(id);
    if (number == 0) continue;
    next_id = std::max(next_id, number + 1);
    const JobFolder folder(entry.path());
    std::ifstream in(folder.job_file());
    std::stringstream toml;
    toml << in.rdbuf();
    JobRecord job;
    try {
      job = record_of(jobspec::load_job_text(toml.str(), folder.job_file()), toml.str());
    } catch (const std::exception& e) {
      job.name = "?";
      job.failure = "its job.toml cannot be read: " + std::string(e.what());
    }
    job.id = id;
    if (const auto submission = read_json(folder.submission_file())) {
      job.submitted_by = submission->value("submitted_by", "");
      job.submitted_at = submission->value("submitted_at", 0.0);
    }
    if (const auto outcome = read_outcome(folder)) {
      job.state = outcome->state;
      job.failure = outcome->failure;
    } else if (job.failure.empty()) {
      cut_off(folder, job);
    } else {
      job.state = JobState::failed;
    }
    jobs.push_back(std::move(job));
  }
  std::sort(jobs.begin(), jobs.end(), [](const JobRecord& a, const JobRecord& b) {
    return job_number(a.id) < job_number(b.id);
  });
  return jobs;
}

fs::path model_file(const JobFolder& folder, const std::string& which) {
  const fs::path dir = folder.models_dir();
  if (which == "best") {
    if (fs::exists(dir / "best.safetensors")) return dir / "best.safetensors";
    throw std::out_of_range("the job has no best model (yet)");
  }
  if (which == "final") {
    int64_t newest = -1;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      const std::string name = entry.path().filename().string();
      if (!name.starts_with("global_round_") || !name.ends_with(".safetensors")) continue;
      try {
        newest = std::max<int64_t>(newest, std::stoll(name.substr(13)));
      } catch (const std::exception&) {
      }
    }
    if (newest < 0) throw std::out_of_range("the job has no global model (yet)");
    return dir / ("global_round_" + std::to_string(newest) + ".safetensors");
  }
  if (which.empty() || which.size() > 18 ||
      !std::all_of(which.begin(), which.end(), [](char c) { return c >= '0' && c <= '9'; }))
    throw std::invalid_argument("expected final, best or a round number, found '" + which + "'");
  const fs::path file = dir / ("global_round_" + which + ".safetensors");
  if (!fs::exists(file))
    throw std::out_of_range("the job kept no model of round " + which + " (server.save_every, "
                            "server.keep_last)");
  return file;
}

}  // namespace flare::deploy
