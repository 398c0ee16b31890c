// A failure's report names the process that failed: a rank stopped by a
// signal rather than the rank left waiting on it, the server rather than the
// site whose request it was handling.
#include <doctest/doctest.h>

#include <chrono>
#include <csignal>
#include <optional>
#include <string>

#include "background_run.hpp"
#include "common/child_process.hpp"
#include "e2e_support.hpp"

using namespace flare::e2e;
using flare::common::ChildProcess;
namespace fs = std::filesystem;

namespace {

ChildProcess start_run(const TempFolder& dir, const std::string& spec) {
  write_text(dir.path() / "job.toml", spec);
  return ChildProcess({FLARE_RUN_BIN, (dir.path() / "job.toml").string()},
                      dir.path() / "flare-run.out");
}

std::optional<flare::common::ExitStatus> wait_for_end(ChildProcess& run) {
  auto status = run.wait_for(std::chrono::seconds(static_cast<int>(60 * kRunTimeScale)));
  if (!status) run.stop();
  return status;
}

}  // namespace

TEST_CASE("a rank stopped by SIGSTOP is reported as the failed rank, not the rank waiting on it") {
  TempFolder dir;
  // site-2 trains 1.5 s a round: site-1's ranks wait for round 2 meanwhile.
  auto run = start_run(dir, c_trainer_job(dir.path() / "ws", 3, "slow_site = 1\nslow_ms = 1500",
                                          "devices = 2\nprogress_timeout_s = 1"));
  const fs::path ws = dir.path() / "ws" / "run-1";
  REQUIRE(wait_for_text(ws / "logs" / "site-1.rank0.log", "round 1: sent the update", 1,
                        60 * kRunTimeScale));
  const auto rank1 = processes_mentioning((ws / "sites/site-1/rank1/heartbeat").string());
  REQUIRE(rank1.size() == 1);
  // Stopped while idle: in round 2 rank 0 waits for it inside a collective.
  REQUIRE(::kill(rank1.front(), SIGSTOP) == 0);
  const auto status = wait_for_end(run);
  INFO(read_text(dir.path() / "flare-run.out"));
  REQUIRE(status);
  CHECK(status->exit_code == 1);
  CHECK(failures_matching(ws, {{"site", "site-1"}, {"rank", 1}, {"action", "fail_job"}}) == 1);
  CHECK(failures_matching(ws, {{"rank", 0}}) == 0);
  for (const auto& failure : lines_of_kind(ws, "failure")) {
    INFO(failure.dump());
    CHECK(failure["cause"]["hang_s"].get<double>() >= 1.0);
  }
  CHECK(processes_mentioning(ws.string()).empty());
}

TEST_CASE("a server that cannot write its models fails the job as its own failure; no site is "
          "blamed") {
  TempFolder dir;
  auto run = start_run(dir, c_trainer_job(dir.path() / "ws", 3, "slow_site = 1\nslow_ms = 1000"));
  const fs::path ws = dir.path() / "ws" / "run-1";
  REQUIRE(wait_for_file(ws / "models" / "global_round_1.safetensors", 60 * kRunTimeScale));
  // Every later model write fails, as on a full disk.
  fs::rename(ws / "models", ws / "models.kept");
  write_text(ws / "models", "not a folder\n");
  const auto status = wait_for_end(run);
  const std::string output = read_text(dir.path() / "flare-run.out");
  INFO(output);
  REQUIRE(status);
  CHECK(status->exit_code == 1);
  CHECK(lines_of_kind(ws, "failure").empty());
  const auto job = job_line(ws);
  REQUIRE(job.is_object());
  CHECK(job["status"] == "failed");
  const std::string reason = job.value("reason", "");
  CHECK(mentions(reason, "the server failed"));
  CHECK(mentions(reason, (ws / "models").string()));
  CHECK(processes_mentioning(ws.string()).empty());
}
