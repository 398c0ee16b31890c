// A site's worker group spanning two "nodes" (two flare-client processes on
// this machine, rendezvousing over loopback), torchrun-style.
#include <doctest/doctest.h>

#include <string>

#include "e2e_support.hpp"

using namespace flare::e2e;
namespace fs = std::filesystem;

TEST_CASE("a site of two nodes with two ranks each trains as one group of four") {
  TempFolder dir;
  // Rank r adds r + 1 and the group averages: (1 + 2 + 3 + 4) / 4 = 2.5 per round
  // only if the all_reduce spans both nodes (node 0 alone would give 1.5).
  write_text(dir.path() / "job.toml",
             c_trainer_job(dir.path() / "ws", 2, "add_rank = 1", "devices = 2\nnodes = 2", 1));
  const auto r = run_command({FLARE_RUN_BIN, (dir.path() / "job.toml").string()}, 120);
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  const fs::path run = dir.path() / "ws" / "run-1";
  for (int round = 0; round <= 2; ++round) {
    CHECK(first_weight(run / "models" / ("global_round_" + std::to_string(round) +
                                         ".safetensors")) == doctest::Approx(2.5 * round));
  }
  for (const auto& l : read_json_lines(run / "metrics.jsonl"))
    if (l["kind"] == "site") CHECK(l["num_samples"] == 40);  // 10 per rank, 4 ranks
  for (const char* log : {"site-1.node0.log", "site-1.node1.log", "site-1.rank0.log",
                          "site-1.rank1.log", "site-1.rank2.log", "site-1.rank3.log"}) {
    CHECK_MESSAGE(fs::exists(run / "logs" / log), "missing log " << log);
  }
  CHECK(processes_mentioning(dir.path().string()).empty());
}

TEST_CASE("a rank that keeps crashing on the second node fails the job once both nodes spent "
          "their restart, leaving no process on either node") {
  TempFolder dir;
  write_text(dir.path() / "job.toml",
             c_trainer_job(dir.path() / "ws", 3, "crash_in_round = 1\ncrash_rank = 1",
                           "devices = 1\nnodes = 2\nmax_restarts = 1", 1));
  const auto r = run_command({FLARE_RUN_BIN, (dir.path() / "job.toml").string()}, 120);
  INFO(r.output);
  CHECK(r.exit_code == 1);
  const fs::path run = dir.path() / "ws" / "run-1";
  // One restart, spent by both nodes together: generation 1 ran, no generation 2.
  CHECK(failures_matching(run, {{"action", "restart"}}) == 1);
  CHECK(failures_matching(run, {{"action", "restart"}, {"generation", 0},
                                {"restarts_left", 0}}) == 1);
  CHECK(failures_matching(run, {{"node", 1}, {"rank", 1}, {"generation", 0},
                                {"cause", {{"signal", 9}}}}) == 1);
  CHECK(failures_matching(run, {{"node", 1}, {"rank", 1}, {"generation", 1},
                                {"cause", {{"signal", 9}}}, {"action", "fail_job"}}) == 1);
  CHECK(failures_matching(run, {{"generation", 2}}) == 0);
  CHECK(job_line(run)["status"] == "failed");
  CHECK(job_line(run)["rounds_completed"] == 1);
  CHECK(processes_mentioning(dir.path().string()).empty());
}
