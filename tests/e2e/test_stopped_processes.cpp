// Stopped (SIGSTOP) and killed processes of a run, signalled for real: every
// process leaves within a bound whatever state its parent died in, sites give
// up on a stopped server, and a stopped site does not hold up the job's end.
#include <doctest/doctest.h>

#include <csignal>
#include <string>

#include "background_run.hpp"
#include "common/child_process.hpp"
#include "e2e_support.hpp"

using namespace flare::e2e;
using flare::common::ChildProcess;
namespace fs = std::filesystem;

namespace {

// site-2 trains `slow_ms` a round, so the other processes wait meanwhile.
std::string slow_job(const TempFolder& dir, int rounds, int slow_ms,
                     const std::string& server_keys = "") {
  return c_trainer_job(dir.path() / "ws", rounds,
                       "slow_site = 1\nslow_ms = " + std::to_string(slow_ms)) +
         server_keys;
}

ChildProcess start_run(const TempFolder& dir, const std::string& spec) {
  write_text(dir.path() / "job.toml", spec);
  return ChildProcess({FLARE_RUN_BIN, (dir.path() / "job.toml").string()},
                      dir.path() / "flare-run.out");
}

// Whether site-1 has sent its first update: every process of the run is up.
bool first_update_sent(const fs::path& run) {
  return wait_for_text(run / "logs" / "site-1.rank0.log", "round 1: sent the update", 1,
                       60 * kRunTimeScale);
}

int only(const std::vector<int>& pids) { return pids.size() == 1 ? pids.front() : -1; }

}  // namespace

TEST_CASE("a SIGKILLed flare-run leaves no process behind, a stopped rank included") {
  TempFolder dir;
  auto run = start_run(dir, slow_job(dir, 3, 3000));
  const fs::path ws = dir.path() / "ws" / "run-1";
  REQUIRE(first_update_sent(ws));
  const int rank = only(processes_mentioning((ws / "sites/site-1/rank1/heartbeat").string()));
  REQUIRE(rank > 0);
  REQUIRE(::kill(rank, SIGSTOP) == 0);
  run.signal(SIGKILL);
  REQUIRE(run.wait_for(std::chrono::seconds(5)));
  // The kernel kills a client when flare-run dies, and a rank when its client does.
  CHECK(all_gone_within(ws.string(), 3 * kRunTimeScale));
}

TEST_CASE("sites give up on a stopped flare-run within server.answer_timeout_s and "
          "server.reconnect_timeout_s, saying so") {
  TempFolder dir;
  auto run =
      start_run(dir, slow_job(dir, 3, 1000, "answer_timeout_s = 2\nreconnect_timeout_s = 1\n"));
  const fs::path ws = dir.path() / "ws" / "run-1";
  REQUIRE(first_update_sent(ws));
  run.signal(SIGSTOP);
  // answer_timeout_s for the task poll (site-1) or the update after a 1 s
  // round (site-2), then reconnect_timeout_s trying again; the same for the
  // failure report; 3 s to stop the ranks.
  const bool left = all_gone_within(ws.string(), 15 * kRunTimeScale);
  run.signal(SIGCONT);
  CHECK(left);
  // Who was waited for, and for how long: the contract of the message.
  const std::string rank0 = read_text(ws / "logs" / "site-1.rank0.log");
  CHECK(mentions(rank0, "server.answer_timeout_s"));
  CHECK(mentions(rank0, "again within 1 s (server.reconnect_timeout_s)"));
  const auto status = run.wait_for(std::chrono::seconds(static_cast<int>(20 * kRunTimeScale)));
  REQUIRE(status);
  CHECK(status->exit_code == 1);  // flare-run, continued, finds its sites gone
  CHECK(job_line(ws)["status"] == "failed");
}

TEST_CASE("a stopped client does not hold up the end of the job, and is named") {
  TempFolder dir;
  auto run = start_run(dir, slow_job(dir, 2, 1000));
  const fs::path ws = dir.path() / "ws" / "run-1";
  REQUIRE(first_update_sent(ws));
  const int client = only(processes_with({"flare-client", ws.string(), "site-1"}));
  REQUIRE(client > 0);
  // Its ranks go on without their supervisor: the job itself can end.
  REQUIRE(::kill(client, SIGSTOP) == 0);
  const auto stopped_at = std::chrono::steady_clock::now();
  const auto status = run.wait_for(std::chrono::seconds(static_cast<int>(60 * kRunTimeScale)));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - stopped_at).count();
  if (!status) ::kill(client, SIGKILL);
  REQUIRE(status);
  const std::string output = read_text(dir.path() / "flare-run.out");
  INFO(output);
  CHECK(status->exit_code == 0);
  // One more round (1 s) and the final evaluation, not the 30 s grace a
  // client that can exit gets.
  CHECK(seconds < 10 * kRunTimeScale);
  CHECK(mentions(output, "site-1's client process (pid " + std::to_string(client) + ")"));
  CHECK(all_gone_within(ws.string(), 3 * kRunTimeScale));
}
