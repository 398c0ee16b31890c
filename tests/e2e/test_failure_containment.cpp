// A worker group's failures stay contained: a crashed, hung or failing rank
// stops its whole group within a bounded time, leaves no process, and is
// recorded in metrics.jsonl with site, rank and cause; max_restarts restarts the group from
// the current global model without spoiling the job's figures.
#include <doctest/doctest.h>

#include <string>

#include "e2e_support.hpp"

using namespace flare::e2e;
namespace fs = std::filesystem;

namespace {

// A healthy C-trainer run takes about 2 s; a failure must end the job within
// the supervisor's bound (50 ms poll + 3 s grace) plus start-up and reporting.
constexpr double kFailureBoundSeconds = 20 * kRunTimeScale;

TimedRun run_job(const TempFolder& dir, const std::string& spec) {
  write_text(dir.path() / "job.toml", spec);
  return run_timed({FLARE_RUN_BIN, (dir.path() / "job.toml").string()}, 120);
}

}  // namespace

TEST_CASE("a rank killed mid-job fails the run within the bound, naming site, rank and cause") {
  TempFolder dir;
  const auto run = run_job(dir, c_trainer_job(dir.path() / "ws", 3,
                                              "crash_in_round = 1\ncrash_rank = 1"));
  INFO(run.result.output);
  CHECK(run.result.exit_code == 1);
  CHECK(run.seconds < kFailureBoundSeconds);
  const fs::path ws = dir.path() / "ws" / "run-1";
  CHECK(failures_matching(ws, {{"rank", 1},
                               {"cause", {{"signal", 9}, {"signal_name", "SIGKILL"}}},
                               {"action", "fail_job"}}) >= 1);
  for (const auto& failure : lines_of_kind(ws, "failure"))
    CHECK((failure["site"] == "site-1" || failure["site"] == "site-2"));
  CHECK(job_line(ws) == nlohmann::json{{"kind", "job"}, {"status", "failed"},
                                       {"reason", job_line(ws)["reason"]},
                                       {"rounds_completed", 1}});
  // What was written before the crash stays intact.
  CHECK(first_weight(ws / "models" / "global_round_1.safetensors") == doctest::Approx(1));
  CHECK(processes_mentioning(dir.path().string()).empty());
}

TEST_CASE("with max_restarts = 1 a rank killed once is restarted and the weights come out exact") {
  TempFolder dir;
  const auto run = run_job(dir, c_trainer_job(dir.path() / "ws", 3,
                                              "crash_in_round = 1\ncrash_rank = 1\ncrash_once = 1",
                                              "devices = 2\nmax_restarts = 1"));
  INFO(run.result.output);
  REQUIRE(run.result.exit_code == 0);
  const fs::path ws = dir.path() / "ws" / "run-1";
  // Each site's rank 1 was killed once and its group restarted once.
  for (const char* site : {"site-1", "site-2"}) {
    CHECK(failures_matching(ws, {{"site", site}, {"rank", 1}, {"generation", 0},
                                 {"cause", {{"signal", 9}}}, {"action", "restart"},
                                 {"restarts_left", 0}}) == 1);
  }
  CHECK(lines_of_kind(ws, "failure").size() == 2);
  CHECK(job_line(ws)["status"] == "succeeded");
  CHECK(job_line(ws)["rounds_completed"] == 3);
  for (int round = 0; round <= 3; ++round) {
    CHECK(first_weight(ws / "models" / ("global_round_" + std::to_string(round) +
                                        ".safetensors")) == doctest::Approx(round));
  }
  // Each site's update counts once per round, restart or not.
  int site_lines = 0;
  for (const auto& l : read_json_lines(ws / "metrics.jsonl")) site_lines += l["kind"] == "site";
  CHECK(site_lines == 2 * 3);
  CHECK(processes_mentioning(dir.path().string()).empty());
}

TEST_CASE("a rank that keeps crashing fails the job once its restarts are used up") {
  TempFolder dir;
  const auto run = run_job(dir, c_trainer_job(dir.path() / "ws", 2,
                                              "crash_in_round = 1\ncrash_rank = 1",
                                              "devices = 2\nmax_restarts = 1"));
  INFO(run.result.output);
  CHECK(run.result.exit_code == 1);
  CHECK(run.seconds < 2 * kFailureBoundSeconds);
  const fs::path ws = dir.path() / "ws" / "run-1";
  CHECK(failures_matching(ws, {{"rank", 1}, {"generation", 0}, {"cause", {{"signal", 9}}},
                               {"action", "restart"}}) >= 1);
  CHECK(failures_matching(ws, {{"rank", 1}, {"generation", 1}, {"cause", {{"signal", 9}}},
                               {"action", "fail_job"}}) >= 1);
  CHECK(failures_matching(ws, {{"generation", 2}}) == 0);
  CHECK(job_line(ws)["status"] == "failed");
  CHECK(processes_mentioning(dir.path().string()).empty());
}

TEST_CASE("a hung rank is stopped after progress_timeout_s and the job fails saying so") {
  TempFolder dir;
  const auto run = run_job(dir, c_trainer_job(dir.path() / "ws", 3,
                                              "hang_in_round = 1\ncrash_rank = 1",
                                              "devices = 2\nprogress_timeout_s = 2"));
  INFO(run.result.output);
  CHECK(run.result.exit_code == 1);
  CHECK(run.seconds < kFailureBoundSeconds);
  const fs::path ws = dir.path() / "ws" / "run-1";
  int hangs = 0;
  for (const auto& failure : lines_of_kind(ws, "failure")) {
    INFO(failure.dump());
    if (!failure["cause"].contains("hang_s")) continue;
    ++hangs;
    CHECK(failure["cause"]["hang_s"].get<double>() >= 2.0);
    CHECK(failure["action"] == "fail_job");
  }
  CHECK(hangs >= 1);
  CHECK(job_line(ws)["status"] == "failed");
  CHECK(processes_mentioning(dir.path().string()).empty());
}

TEST_CASE("a rank waiting for its next task while another site trains is not taken for hung") {
  TempFolder dir;
  // site-2 trains for 2.5 s (reporting progress); site-1 waits that long between tasks.
  const auto run = run_job(dir, c_trainer_job(dir.path() / "ws", 1,
                                              "slow_site = 1\nslow_ms = 2500",
                                              "devices = 2\nprogress_timeout_s = 1"));
  INFO(run.result.output);
  CHECK(run.result.exit_code == 0);
}

TEST_CASE("a plugin's error message reaches flare-run's output") {
  TempFolder dir;
  const auto run = run_job(dir, c_trainer_job(dir.path() / "ws", 3, "throw_in_round = 1"));
  INFO(run.result.output);
  CHECK(run.result.exit_code == 1);
  // The plugin's own words are the contract here: the user must see them.
  CHECK(mentions(run.result.output, "injected failure: the disk is full"));
  const fs::path ws = dir.path() / "ws" / "run-1";
  CHECK(failures_matching(ws, {{"rank", 0}, {"cause", {{"exit_code", 1}}},
                               {"action", "fail_job"}}) >= 1);
  CHECK(job_line(ws)["status"] == "failed");
  CHECK(processes_mentioning(dir.path().string()).empty());
}
