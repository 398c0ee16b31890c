// rendezvous_timeout_s: a worker group whose node never comes up fails the
// job in bounded time, saying who did not arrive and where it waited.
#include <doctest/doctest.h>

#include <string>

#include "e2e_support.hpp"

using namespace flare::e2e;
namespace fs = std::filesystem;

namespace {

// site-1 spans two nodes of two ranks each; `down` never starts.
TimedRun run_with_node_down(const TempFolder& dir, int down) {
  write_text(dir.path() / "job.toml",
             c_trainer_job(dir.path() / "ws", 2, "",
                           "devices = 2\nnodes = 2\nrendezvous_timeout_s = 2", 1));
  const fs::path flare_run = flare_run_with_node_down(dir.path(), down);
  return run_timed({flare_run.string(), (dir.path() / "job.toml").string()}, 120);
}

}  // namespace

TEST_CASE("ranks of a node that never comes up are named once rendezvous_timeout_s passes") {
  TempFolder dir;
  const auto run = run_with_node_down(dir, 1);
  INFO(run.result.output);
  CHECK(run.result.exit_code == 1);
  CHECK(run.seconds < 20 * kRunTimeScale);
  const fs::path ws = dir.path() / "ws" / "run-1";
  CHECK(failures_matching(ws, {{"node", 0}, {"cause", {{"exit_code", 1}}},
                               {"action", "fail_job"}}) >= 1);
  CHECK(job_line(ws)["status"] == "failed");
  // The text is the contract: the user learns which ranks never came, and where.
  CHECK(mentions(run.result.output, "worker group of site-1: ranks 2, 3 (node 1) did not join "
                                    "the rendezvous at 127.0.0.1:"));
  CHECK(mentions(run.result.output, " within 2 s"));
  CHECK(processes_mentioning(dir.path().string()).empty());
}

TEST_CASE("a node whose node 0 never comes up says it could not reach the rendezvous") {
  TempFolder dir;
  const auto run = run_with_node_down(dir, 0);
  INFO(run.result.output);
  CHECK(run.result.exit_code == 1);
  CHECK(run.seconds < 20 * kRunTimeScale);
  const fs::path ws = dir.path() / "ws" / "run-1";
  CHECK(failures_matching(ws, {{"node", 1}, {"cause", {{"exit_code", 1}}},
                               {"action", "fail_job"}}) >= 1);
  CHECK(job_line(ws)["status"] == "failed");
  // The text is the contract: the user learns which rendezvous was out of reach.
  CHECK(mentions(run.result.output, "worker group of site-1: could not reach the rendezvous at "
                                    "127.0.0.1:"));
  CHECK(mentions(run.result.output, " (node 0) within 2 s"));
  CHECK(processes_mentioning(dir.path().string()).empty());
}
