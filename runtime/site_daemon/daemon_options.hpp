// flare-client --startup's command line (docs/deploying.md, README.md).
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "site_daemon/job_launch.hpp"

namespace flare::site_daemon {

// The environment variable naming the program each job runs as, in place of
// this flare-client (for tests: a recorder; for operators: a wrapper, which
// must exec flare-client). --job-program wins over it.
inline constexpr const char* kJobProgramVariable = "FLARE_JOB_PROGRAM";

struct DaemonOptions {
  std::filesystem::path startup;
  std::optional<std::filesystem::path> workspace;  // unset: <startup>/../workspace
  std::optional<std::filesystem::path> policy, data_dir, job_program;
  std::vector<std::filesystem::path> plugin_path;
  std::optional<int> nnodes, node_rank, master_port;
  std::optional<std::string> master_addr;
};

// Throws std::exception (boost's or std::runtime_error) with the reason.
DaemonOptions parse_daemon_options(int argc, char** argv);

// Every path absolute, the defaults filled; `site` is the certificate's name.
SiteSetup site_setup(const DaemonOptions& options, const std::string& site);

}  // namespace flare::site_daemon
