// flare-server --run-job: one job's server in a process of its own (started
// and stopped by job_runner). It runs the FederatedServer flare-run runs, on
// the port it is given, with the server's provisioned identity; SIGTERM
// aborts the job with the reason the runner wrote into the folder. It leaves
// outcome.json (how the job ended) and report.html.
#pragma once

#include <filesystem>
#include <string>

#include "deploy/job_submission.hpp"

namespace flare::deploy {

struct JobProcessArgs {
  std::filesystem::path job_dir;  // <workspace>/jobs/<id>, holding job.toml
  std::filesystem::path startup;  // the server's startup folder
  std::string listen_host;
  int port = 0;
  ServerSide server;
  // Go on after the job's newest good checkpoint (a restarted flare-server).
  bool resume = false;
};

// Exit code: 0 the job finished, 1 it failed or was aborted.
int run_job_process(const JobProcessArgs& args);

}  // namespace flare::deploy
