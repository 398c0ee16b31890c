// Runs a job on this machine: the server in this process, each site as a
// flare-client process with its worker group, everything over loopback.
// The same server and client code serve a multi-host deployment.
#pragma once

#include <ostream>

#include "jobspec/job_spec.hpp"

namespace flare::cli {

// Exit codes of flare-run.
constexpr int kExitSuccess = 0;
constexpr int kExitRunFailure = 1;
constexpr int kExitBadInput = 2;

// Runs `job` to the end; progress and the summary go to `out`. Returns an
// exit code. Throws only for bad input found before anything started.
int run_local_job(const jobspec::JobSpec& job, std::ostream& out, bool interactive);

}  // namespace flare::cli
