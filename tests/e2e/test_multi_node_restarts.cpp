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

bool mentions(const std::string& text, const std::string& what) {
  return text.find(what) != std::string::npos;
}

// Rank r adds r + 1 and the group averages: 1.5 a round only when the
// all_reduce spans both nodes.
void check_weights(const fs::path& run, int rounds, double per_round) {
  for (int round = 0; round <= rounds; ++round) {
    INFO("round " << round);
    CHECK(first_weight(run / "models" / ("global_round_" + std::to_string(round) +
                                         ".safetensors")) == doctest::Approx(per_round * round));
  }
}

// Both nodes ran generation 1 and no other restart.
void check_one_restart_on_both_nodes(const fs::path& run) {
  for (const char* log : {"site-1.node0.log", "site-1.node1.log"}) {
    CHECK_MESSAGE(occurrences(run / "logs" / log, "generation 1)") == 1, log);
    CHECK_MESSAGE(occurrences(run / "logs" / log, "generation 2)") == 0, log);
  }
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
  CHECK(mentions(r.output, "restarting its worker group (0 restarts left)"));
  const fs::path run = dir.path() / "ws" / "run-1";
  check_weights(run, 3, 1.5);
  int site_lines = 0;
  for (const auto& l : read_json_lines(run / "metrics.jsonl")) site_lines += l["kind"] == "site";
  CHECK(site_lines == 3);  // an update counts once per round, restart or not
  check_one_restart_on_both_nodes(run);
  CHECK(processes_mentioning(dir.path().string()).empty());
}

// Kills global rank `rank` of site-1 once it has sent its update of round 1
// and waits for the next task, while site-2 still trains; the other rank
// must learn of it (its log shows `how`) and restart with it.
void kill_idle_rank(int rank, const std::string& how) {
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
  CHECK(mentions(r.output, "worker rank " + std::to_string(rank) + " failed: killed by signal 9"));
  const int other = 1 - rank;
  CHECK(occurrences(run / "logs" / ("site-1.rank" + std::to_string(other) + ".log"), how) == 1);
  // site-1 (two ranks: + 1.5, 20 samples) and site-2 (one rank: + 1, 10 samples).
  check_weights(run, 2, (20 * 1.5 + 10 * 1.0) / 30);
  check_one_restart_on_both_nodes(run);
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
  kill_idle_rank(1, "refused: the site now runs generation 1");
}

TEST_CASE("node 1, idle in its group, learns that rank 0 died and restarts too") {
  kill_idle_rank(0, "sharing the task: broadcast failed on rank 1 of 2");
}
