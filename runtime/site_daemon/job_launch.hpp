// Turning a job the server offers into the per-job flare-client's files and
// command line: the job's folder <workspace>/jobs/<job_id>/ (0700), the
// offered spec with what is this site's own rewritten (data.dir, the
// workspace, the plugin search path), written as job.toml, and the argv.
#pragma once

#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace flare::site_daemon {

// What this site decides for every job it runs (flare-client --startup's options).
struct SiteSetup {
  std::string site;                   // the certificate's name
  std::filesystem::path startup;      // the site's startup folder: its --tls-dir
  std::filesystem::path workspace;    // jobs go in <workspace>/jobs/<job_id>/
  std::filesystem::path job_program;  // the per-job client (this flare-client)
  std::optional<std::filesystem::path> data_dir;     // unset: the job's data.dir
  std::vector<std::filesystem::path> plugin_path;    // empty: the job's plugin_path
  std::optional<std::filesystem::path> policy;
  // A multi-node site: this node's part of the group, handed to each job's client.
  std::optional<int> nnodes, node_rank, master_port;
  std::optional<std::string> master_addr;
};

struct JobLaunch {
  std::string job_id;
  std::filesystem::path folder;    // <workspace>/jobs/<job_id>
  std::filesystem::path job_file;  // folder/job.toml as rewritten for this site
  std::filesystem::path log_file;  // the per-job client's own output
  std::vector<std::string> argv;
};

// An offer this site does not run; the message says why.
class OfferRefused : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Why `job_id` cannot name a folder here (empty when it can): 1-128 of
// [A-Za-z0-9._-], starting alphanumeric, so no id reaches outside jobs/.
std::string job_id_problem(std::string_view job_id);

// Prepares the folder and job.toml for the offer; `server` is the job's own
// server ("host:port"). Throws OfferRefused for an id, spec or site that
// does not fit (the spec's error names file, line and key).
JobLaunch prepare_job(const std::string& job_id, const std::string& job_toml,
                      const std::string& server, const SiteSetup& setup);

}  // namespace flare::site_daemon
