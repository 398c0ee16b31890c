// What flare-run checks before it starts anything, beyond the job spec
// itself: the data folder, the workspace, the server's address, and the
// plugins with their configs (and the trainer with its data). A problem is an
// InputError naming the job file and the key: bad input, exit 2.
#pragma once

#include <flare/plugin_abi.h>

#include <stdexcept>

#include "jobspec/job_spec.hpp"
#include "plugin_host/plugin_loader.hpp"

namespace flare::cli {

// Bad input found before anything started: "<job file>: <key>: <what>".
class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The checks that need no plugin, each cheap, none leaving anything behind:
// - data.dir: an existing folder this process can read;
// - job.workspace: a folder that exists or can be made, where this process
//   can create a run folder (tried, not read from permission bits: they say
//   nothing of a read-only mount or to root). A disk error there (full,
//   failing) is no input error: std::runtime_error;
// - server.host: a name or address of this machine, where a socket can listen.
void check_data_dir(const jobspec::JobSpec& job);
void check_workspace(const jobspec::JobSpec& job);
void check_server_host(const jobspec::JobSpec& job);

// The job's two plugins, each loaded once (the trainer's load is the LibTorch
// load flare-run pays anyway). Throws host::PluginLoadError.
struct JobPlugins {
  host::LoadedPlugin trainer;
  host::LoadedPlugin aggregator;
};
JobPlugins load_job_plugins(const jobspec::JobSpec& job);

// Where rank 0 of the first site will run, as planned.
struct PlannedRank {
  int world_size = 1;
  int local_world_size = 1;
  DLDevice device{kDLCPU, 0};
  int num_threads = 1;
};

// Has each plugin check its config (ABI 1.2 validate_config), the trainer as
// rank 0 of the first site, so also its data. A refusal is an InputError
// naming trainer.config or aggregator.config (data.dir when the trainer
// answers NOT_FOUND or IO). A plugin of ABI 1.1 is not asked.
void validate_plugin_configs(const jobspec::JobSpec& job, const JobPlugins& plugins,
                             const PlannedRank& first_rank);

}  // namespace flare::cli
