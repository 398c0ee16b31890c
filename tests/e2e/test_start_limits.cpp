// Start-up within limits: a job asking for far more CPU ranks than the machine
// has cores is refused before anything starts, and starting many processes
// stops at once for an interrupt or the start timeout.
#include <doctest/doctest.h>

#include <chrono>
#include <csignal>
#include <optional>
#include <string>
#include <thread>

#include <sched.h>

#include "background_run.hpp"
#include "common/child_process.hpp"
#include "e2e_support.hpp"

using namespace flare::e2e;
using flare::common::ChildProcess;
namespace fs = std::filesystem;

namespace {

int usable_cores() {
  cpu_set_t cpus;
  return sched_getaffinity(0, sizeof cpus, &cpus) == 0 ? CPU_COUNT(&cpus) : 1;
}

// More sites than start in a moment, each a stand-in client that never registers.
constexpr int kManySites = 2000;

std::string many_sites_job(const TempFolder& dir, const std::string& server_keys) {
  return c_trainer_job(dir.path() / "ws", 1, "", "devices = 1\noversubscribe = true",
                       kManySites) +
         server_keys;
}

int files_in(const fs::path& folder) {
  int n = 0;
  for (const auto& entry : fs::directory_iterator(folder)) n += entry.is_regular_file();
  return n;
}

// How `process` ended after `signal`, and how long that took.
struct Ending {
  std::optional<flare::common::ExitStatus> status;
  double seconds = 0;
};
Ending signal_and_wait(ChildProcess& process, int signal) {
  process.signal(signal);
  const auto signalled = std::chrono::steady_clock::now();
  Ending ending;
  ending.status = process.wait_for(std::chrono::seconds(static_cast<int>(60 * kRunTimeScale)));
  ending.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - signalled).count();
  return ending;
}

}  // namespace

TEST_CASE("a job with more than 4 CPU ranks per core is refused before anything starts, naming "
          "the file and the keys") {
  TempFolder dir;
  const int ranks = 4 * usable_cores() + 1;
  write_text(dir.path() / "job.toml",
             c_trainer_job(dir.path() / "ws", 1, "", "devices = " + std::to_string(ranks), 1));
  const auto run = run_timed({FLARE_RUN_BIN, (dir.path() / "job.toml").string()}, 60);
  INFO(run.result.output);
  CHECK(run.result.exit_code == 2);
  CHECK(run.seconds < 10 * kRunTimeScale);
  CHECK(mentions(run.result.output, (dir.path() / "job.toml").string()));
  CHECK(mentions(run.result.output, "clients.oversubscribe = true"));
  CHECK_FALSE(fs::exists(dir.path() / "ws"));
}

TEST_CASE("SIGTERM while flare-run starts thousands of clients ends the run at once") {
  TempFolder dir;
  const fs::path bin = programs_with_waiting(dir.path(), "flare-client");
  write_text(dir.path() / "job.toml", many_sites_job(dir, ""));
  ChildProcess run({(bin / "flare-run").string(), (dir.path() / "job.toml").string()},
                   dir.path() / "flare-run.out");
  const fs::path logs = dir.path() / "ws" / "run-1" / "logs";
  REQUIRE(wait_for_file(logs / "site-1.log", 60 * kRunTimeScale));
  const auto end = signal_and_wait(run, SIGTERM);
  INFO(read_text(dir.path() / "flare-run.out"));
  REQUIRE(end.status);
  CHECK(end.status->exit_code == 1);
  // The sites get 2 s to leave after a failure, then 3 s after SIGTERM.
  CHECK(end.seconds < 8 * kRunTimeScale);
  CHECK(files_in(logs) < kManySites);  // it stopped starting them
  CHECK(all_gone_within((dir.path() / "ws").string(), 3 * kRunTimeScale));
}

TEST_CASE("worker_start_timeout_s fails the job on time while clients are still starting") {
  TempFolder dir;
  const fs::path bin = programs_with_waiting(dir.path(), "flare-client");
  write_text(dir.path() / "job.toml", many_sites_job(dir, "worker_start_timeout_s = 1\n"));
  const auto run = run_timed({(bin / "flare-run").string(), (dir.path() / "job.toml").string()},
                             120);
  INFO(run.result.output);
  CHECK(run.result.exit_code == 1);
  // 1 s, then 2 s for the sites to leave and 3 s after SIGTERM, plus start-up.
  CHECK(run.seconds < 10 * kRunTimeScale);
  const fs::path ws = dir.path() / "ws" / "run-1";
  const auto job = job_line(ws);
  REQUIRE(job.is_object());
  CHECK(mentions(job.value("reason", ""), "worker_start_timeout_s"));
  CHECK(all_gone_within(ws.string(), 3 * kRunTimeScale));
}

TEST_CASE("a client told to stop while it starts its ranks starts no more of them") {
  TempFolder dir;
  const fs::path bin = programs_with_waiting(dir.path(), "flare-worker");
  constexpr int kRanks = 3000;
  write_text(dir.path() / "job.toml",
             c_trainer_job(dir.path() / "ws", 1, "", "devices = " + std::to_string(kRanks), 1));
  const fs::path logs = dir.path() / "logs";
  fs::create_directories(logs);
  // Plenty of cores on paper, so no limit applies to this many ranks.
  ChildProcess client({(bin / "flare-client").string(), "--job",
                       (dir.path() / "job.toml").string(), "--site", "site-1", "--server",
                       "127.0.0.1:1", "--log-dir", logs.string(), "--work-dir",
                       (dir.path() / "sites").string(), "--device-inventory",
                       R"({"cpu_cores":1000,"cuda_built":false,"cuda_devices":0})"},
                      dir.path() / "client.log");
  REQUIRE(wait_for_file(logs / "site-1.rank0.log", 60 * kRunTimeScale));
  const auto end = signal_and_wait(client, SIGTERM);
  INFO(read_text(dir.path() / "client.log"));
  REQUIRE(end.status);
  CHECK(end.seconds < 5 * kRunTimeScale);  // the ranks started so far get 3 s after SIGTERM
  CHECK(files_in(logs) < kRanks);
  CHECK(all_gone_within((dir.path() / "sites").string(), 3 * kRunTimeScale));
}
