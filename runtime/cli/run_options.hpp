// flare-run's command line: what the user asked for, before the job file is read.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace flare::cli {

struct RunOptions {
  std::filesystem::path job_file;
  // --resume RUN_DIR: go on with that run (its job.toml) after its last
  // checkpoint; no job file and no option that changes the job.
  std::optional<std::filesystem::path> resume_dir;
  std::optional<int> n_clients, num_rounds;
  bool use_tracking = false;
  std::optional<std::filesystem::path> export_config, workspace;
  std::vector<std::string> sets;  // "key.path=value", in the order given
  // --site-policy SITE=FILE: the policy file that site's flare-client enforces.
  std::map<std::string, std::filesystem::path> site_policies;
  bool show_help = false, show_version = false;
  std::string help_text;  // usage and options, filled on every successful parse
};

// A command line flare-run cannot run; the message says what was expected.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// `flare-run JOB.toml [--n_clients N] [--num_rounds R] [--use_tracking]
// [--export_config DIR] [--workspace DIR] [--set key.path=value ...]
// [--site-policy SITE=FILE ...]` or `flare-run --resume RUN_DIR
// [--site-policy SITE=FILE ...]`; each
// option also spelled with dashes (--n-clients). Throws UsageError.
RunOptions parse_run_options(int argc, const char* const argv[]);

// The options as job spec overrides (jobspec::load_job), --set entries last so
// they win. --n_clients also sets job.min_clients unless a --set names it.
std::vector<std::string> to_overrides(const RunOptions& options);

}  // namespace flare::cli
