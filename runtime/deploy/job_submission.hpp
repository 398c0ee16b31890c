// What the long-running server checks of a submitted job before it queues it:
// the spec loads (the message names the file, the key and what was expected),
// it names only the project's sites, and its aggregator loads here (the
// server's installed plugins: jobs never ship binaries). Nothing is created
// for a refused job.
#pragma once

#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "deploy/job_table.hpp"
#include "jobspec/job_spec.hpp"

namespace flare::deploy {

class SubmissionError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The server's side of every job: its sites and plugin folders.
struct ServerSide {
  std::vector<std::string> project_sites;         // local.toml [federation] sites
  std::vector<std::filesystem::path> plugin_path;  // flare-server --plugin-path
};

// The job as the table lists it; `resolved_toml` is what sites are offered.
JobRecord record_of(const jobspec::JobSpec& job, const std::string& resolved_toml);

// Checks `toml` (the admin's file `file_name`) and returns its record, the
// resolved spec as job_toml. Throws SubmissionError.
JobRecord check_submission(const std::string& toml, const std::string& file_name,
                           const ServerSide& server);

// The overrides a job process applies to the stored job: the server's plugin
// folders in place of the admin's.
std::vector<std::string> server_overrides(const ServerSide& server);

}  // namespace flare::deploy
