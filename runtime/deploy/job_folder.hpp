// A job's folder on the long-running server, <workspace>/jobs/<id>/: laid
// out as a flare-run run folder (job.toml, metrics.jsonl, models/, logs/,
// report.html), plus what the server keeps to list the job after a restart
// (submission.json, outcome.json) and the admin's reason for an abort.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "deploy/job_table.hpp"

namespace flare::deploy {

class JobFolder {
 public:
  explicit JobFolder(std::filesystem::path root) : root_(std::move(root)) {}
  const std::filesystem::path& root() const { return root_; }
  std::filesystem::path job_file() const { return root_ / "job.toml"; }
  std::filesystem::path submission_file() const { return root_ / "submission.json"; }
  std::filesystem::path outcome_file() const { return root_ / "outcome.json"; }
  std::filesystem::path abort_file() const { return root_ / "abort_reason.txt"; }
  std::filesystem::path metrics_file() const { return root_ / "metrics.jsonl"; }
  std::filesystem::path models_dir() const { return root_ / "models"; }
  std::filesystem::path log_file() const { return root_ / "logs" / "job-server.log"; }
  // The port its server first listened on: a restarted server resumes the job
  // there, where the sites' clients still call.
  std::filesystem::path port_file() const { return root_ / "port"; }
  // Round checkpoints, as cli::RunWorkspace lays them out.
  std::filesystem::path checkpoint_dir() const { return root_ / "checkpoints"; }

 private:
  std::filesystem::path root_;
};

// How a job ended, as its server process wrote it.
struct Outcome {
  JobState state = JobState::failed;
  std::string failure;
};
void write_outcome(const JobFolder& folder, const Outcome& outcome);
std::optional<Outcome> read_outcome(const JobFolder& folder);

// The job's port (port_file), written when it first starts.
void write_port(const JobFolder& folder, int port);
std::optional<int> read_port(const JobFolder& folder);

// Creates the folder (owner-only) with job.toml and submission.json.
void create_job_folder(const JobFolder& folder, const JobRecord& job);

// Rounds whose global model was made: the highest round every site's update
// went into (metrics.jsonl "site" lines), or the "job" line's count.
int64_t rounds_done(const JobFolder& folder, size_t num_sites);

// The jobs under `jobs_dir` (a restart's table), oldest first. A job without
// an outcome was cut off by the server's stop: with a whole checkpoint and its
// port recorded it is `running` on that port with resumed_after_round set
// (the runner starts it again: JobRunner::resume), else failed with the reason.
// `next_id` gets the first number no folder has.
std::vector<JobRecord> read_jobs(const std::filesystem::path& jobs_dir, int64_t& next_id);

// The model an admin asks for: "final" (the newest global_round file),
// "best", or a round number. Throws std::out_of_range naming what is missing.
std::filesystem::path model_file(const JobFolder& folder, const std::string& which);

}  // namespace flare::deploy
