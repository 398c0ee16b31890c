// Runs a job on this machine: the server in this process, each site as a
// flare-client process with its worker group, everything over loopback.
// The same server and client code serve a multi-host deployment.
#pragma once

#include <filesystem>
#include <map>
#include <ostream>
#include <string>

#include "cli/resume_point.hpp"
#include "jobspec/job_spec.hpp"

namespace flare::cli {

// Exit codes of flare-run.
constexpr int kExitSuccess = 0;
constexpr int kExitRunFailure = 1;
constexpr int kExitBadInput = 2;

// Runs `job` to the end; progress and the summary go to `out`. Returns an
// exit code. Throws only for bad input found before anything started.
// `site_policies`: sites whose flare-client enforces a policy file, by name
// (each must be a site of the job; InputError otherwise). With `resume`
// (flare-run --resume), the job is resume->job, run in its own folder after
// its checkpoint's round, every site started fresh.
int run_local_job(const jobspec::JobSpec& job, std::ostream& out, bool interactive,
                  const std::map<std::string, std::filesystem::path>& site_policies = {},
                  const ResumePoint* resume = nullptr);

}  // namespace flare::cli
