#include "deploy/job_process.hpp"

#include <atomic>
#include <chrono>
#include <csignal>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <thread>

#include "cli/run_workspace.hpp"
#include "deploy/job_folder.hpp"
#include "identity/startup_kit.hpp"
#include "server/federated_server.hpp"

namespace flare::deploy {

namespace {

std::atomic<bool> g_stop{false};
void on_stop(int) { g_stop = true; }

// Sites ask for their next task at least every 2 s (the task long poll):
// serving this long after the end tells every live site that the job ended.
constexpr auto kLetSitesHearTheEnd = std::chrono::seconds(3);

std::string abort_reason(const JobFolder& folder) {
  std::ifstream in(folder.abort_file());
  std::stringstream text;
  text << in.rdbuf();
  return text.str().empty() ? std::string("the job's server process was stopped (SIGTERM)")
                            : text.str();
}

}  // namespace

int run_job_process(const JobProcessArgs& args) {
  std::signal(SIGTERM, on_stop);
  std::signal(SIGINT, on_stop);
  const JobFolder folder(args.job_dir);
  Outcome outcome;
  try {
    auto overrides = server_overrides(args.server);
    overrides.push_back(jobspec::string_override("server.host", args.listen_host));
    overrides.push_back("server.port=" + std::to_string(args.port));
    const auto job = jobspec::load_job(folder.job_file(), overrides);
    const auto aggregator = server::load_aggregator(job);
    const auto ws = cli::RunWorkspace::in_folder(folder.root());
    server::ProgressDisplay display(std::cout, false, job.num_rounds);
    std::optional<server::FederatedServer> made;
    try {
      made.emplace(job, aggregator, cli::server_files(ws, job), display,
                   server::server_tls_from_kit(identity::load_startup_kit(args.startup)),
                   args.resume);
    } catch (const server::NothingToResume& e) {
      throw std::runtime_error("the server stopped before the job ended: " +
                               std::string(e.what()));
    }
    server::FederatedServer& server = *made;
    std::cout << "job server of " << folder.root().filename().string() << " listening on "
              << server.address() << std::endl;
    bool aborted = false;
    const auto result = server.run([&] {
      if (g_stop && !aborted) {
        aborted = true;
        server.abort(abort_reason(folder));
      }
    });
    outcome.state = result.success ? JobState::finished
                    : aborted      ? JobState::aborted
                                   : JobState::failed;
    outcome.failure = result.failure;
    display.summary(server.figures());
    std::cout << cli::write_report(ws) << std::endl;
    write_outcome(folder, outcome);
    std::this_thread::sleep_for(kLetSitesHearTheEnd);
  } catch (const std::exception& e) {
    outcome = {JobState::failed, std::string("the job's server could not run it: ") + e.what()};
    std::cout << outcome.failure << std::endl;
    try {
      write_outcome(folder, outcome);
    } catch (const std::exception& w) {
      std::cout << "outcome.json not written: " << w.what() << std::endl;
    }
  }
  return outcome.state == JobState::finished ? 0 : 1;
}

}  // namespace flare::deploy
