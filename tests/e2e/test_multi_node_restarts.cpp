// max_restarts for a worker group spanning two "nodes" (two flare-client
// processes on loopback): every node restarts as the same new generation and
// re-rendezvouses, whichever node failed and whatever the others were doing.
#include <doctest/doctest.h>

#include <csignal>
#include <future>
#include <string>

#include "e2e_support.hpp"

using namespace flare::e2e;
namespace fs = std::filesystem;

namespace {

// Rank r adds r + 1 and the group averages: 1.5 a round only when the
// all_reduce spans both nodes.
void check_weights(const fs::path& run, int rounds, double per_round) {
  for (int round = 0; round <= rounds; ++round) {
    INFO("round " << round);
    CHECK(first_weight(run / "models" / ("global_round_" + std::to_string(round) +
                                         ".safetensors")) == doctest::Approx(per_round * round));
  }
}

// One restart, counted once for both nodes, and the job ran to the end. (That
// both nodes ran generation 1 together shows in the weights: 1.5 a round
// needs both nodes' ranks in one all_reduce, and the server refuses a stale
// generation.)
void check_one_restart_on_both_nodes(const fs::path& run, int rounds) {
  CHECK(failures_matching(run, {{"action", "restart"}}) == 1);
  CHECK(failures_matching(run, {{"action", "restart"}, {"restarts_left", 0}}) == 1);
  CHECK(failures_matching(run, {{"generation", 0}}) ==
        static_cast<int>(lines_of_kind(run, "failure").size()));
  CHECK(job_line(run)["status"] == "succeeded");
  CHECK(job_line(run)["rounds_completed"] == rounds);
}

void crash_once_on_rank(int rank) {
  TempFolder dir;
  write_text(dir.path() / "job.toml",
             c_trainer_job(dir.path() / "ws", 3,
                           "add_rank = 1\ncrash_in_round = 1\ncrash_once = 1\ncrash_rank = " +
                               std::to_string(rank),
                           "devices = 1\nnodes = 2\nmax_restarts = 1", 1));
  const auto r = run_command({FLARE_RUN_BIN, (dir.path() / "job.toml").string()}, 120);
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  const fs::path run = dir.path() / "ws" / "run-1";
  CHECK(failures_matching(run, {{"node", rank}, {"rank", rank}, {"cause", {{"signal", 9}}}}) == 1);
  check_weights(run, 3, 1.5);
  int site_lines = 0;
  for (const auto& l : read_json_lines(run / "metrics.jsonl")) site_lines += l["kind"] == "site";
  CHECK(site_lines == 3);  // an update counts once per round, restart or not
  check_one_restart_on_both_nodes(run, 3);
  CHECK(processes_mentioning(dir.path().string()).empty());
}

// Kills global rank `rank` of site-1 once it has sent its update of round 1
// and waits for the next task, while site-2 still trains; the other rank
// must learn of it and restart with it: its node reports its own failure of
// generation 0 (how it learns is the test case's name).
void kill_idle_rank(int rank) {
  TempFolder dir;
  write_text(dir.path() / "job.toml",
             c_trainer_job(dir.path() / "ws", 2, "add_rank = 1\nslow_site = 1\nslow_ms = 1000",
                           "devices = 1\nnodes = 2\nmax_restarts = 1\nrendezvous_timeout_s = 20\n"
                           "[sites.site-2]\nnodes = 1"));
  auto job = std::async(std::launch::async, [&] {
    return run_command({FLARE_RUN_BIN, (dir.path() / "job.toml").string()}, 120);
  });
  const fs::path run = dir.path() / "ws" / "run-1";
  const bool idle = wait_for_text(run / "logs" / "site-1.rank0.log", "round 1: sent the update");
  const auto pids = processes_mentioning(
      (run / "sites" / "site-1" / ("rank" + std::to_string(rank)) / "heartbeat").string());
  if (idle && pids.size() == 1) ::kill(pids.front(), SIGKILL);
  const auto r = job.get();
  INFO(r.output);
  REQUIRE(idle);
  REQUIRE(pids.size() == 1);
  REQUIRE(r.exit_code == 0);
  CHECK(failures_matching(run, {{"site", "site-1"}, {"node", rank}, {"rank", rank},
                                {"generation", 0}, {"cause", {{"signal", 9}}}}) == 1);
  const int other = 1 - rank;
  CHECK(failures_matching(run, {{"site", "site-1"}, {"node", other}, {"rank", other},
                                {"generation", 0}}) == 1);
  // site-1 (two ranks: + 1.5, 20 samples) and site-2 (one rank: + 1, 10 samples).
  check_weights(run, 2, (20 * 1.5 + 10 * 1.0) / 30);
  check_one_restart_on_both_nodes(run, 2);
  CHECK(processes_mentioning(dir.path().string()).empty());
}

}  // namespace

TEST_CASE("a rank crashing once on node 1 restarts both nodes as one generation, exactly") {
  crash_once_on_rank(1);
}

TEST_CASE("a rank crashing once on node 0 restarts both nodes as one generation, exactly") {
  crash_once_on_rank(0);
}

TEST_CASE("node 0, idle on the server, learns that a rank of node 1 died and restarts too") {
  kill_idle_rank(1);
}

TEST_CASE("node 1, idle in its group, learns that rank 0 died and restarts too") {
  kill_idle_rank(0);
}
