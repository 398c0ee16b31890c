// A flare-run SIGKILLed after round 2 of 4 and resumed with --resume ends as
// an uninterrupted run does: 4 rounds, the same global models (the plain-C
// trainer is deterministic: every round adds 1, so w = round), nothing of
// the killed run left running.
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

// site-2 trains 700 ms a round: time to kill the run between rounds 2 and 4.
std::string slow_job(const fs::path& workspace) {
  return c_trainer_job(workspace, 4, "slow_site = 1\nslow_ms = 700", "devices = 1");
}

}  // namespace

TEST_CASE("a run SIGKILLed after round 2 and resumed reaches round 4 with an uninterrupted run's models") {
  TempFolder dir;
  write_text(dir.path() / "straight.toml", slow_job(dir.path() / "straight"));
  const auto straight = run_command({FLARE_RUN_BIN, (dir.path() / "straight.toml").string()});
  INFO(straight.output);
  REQUIRE(straight.exit_code == 0);

  write_text(dir.path() / "job.toml", slow_job(dir.path() / "ws"));
  ChildProcess killed({FLARE_RUN_BIN, (dir.path() / "job.toml").string()},
                      dir.path() / "killed.out");
  const fs::path run = dir.path() / "ws" / "run-1";
  REQUIRE(wait_for_file(run / "checkpoints" / "checkpoint_round_2.ckpt", 120 * kRunTimeScale));
  killed.signal(SIGKILL);
  REQUIRE(killed.wait_for(std::chrono::seconds(5)));
  CHECK(all_gone_within(run.string(), 5 * kRunTimeScale));
  REQUIRE(job_line(run).is_null());  // killed: it never ended
  const auto rounds_before = lines_of_kind(run, "global").size();

  const auto resumed = run_command({FLARE_RUN_BIN, "--resume", run.string()});
  INFO(resumed.output);
  REQUIRE(resumed.exit_code == 0);
  CHECK(mentions(resumed.output, "resuming " + fs::canonical(run).string() + " after round "));
  CHECK(job_line(run) == nlohmann::json{{"kind", "job"}, {"status", "succeeded"},
                                        {"rounds_completed", 4}});
  CHECK_FALSE(fs::exists(dir.path() / "ws" / "run-2"));  // the same folder
  CHECK(lines_of_kind(run, "global").size() > rounds_before);  // appended to
  const fs::path straight_run = dir.path() / "straight" / "run-1";
  for (int round = 0; round <= 4; ++round) {
    const std::string model = "global_round_" + std::to_string(round) + ".safetensors";
    CAPTURE(round);
    // A resume that restored the round but not the model would end at w = 2.
    CHECK(first_weight(run / "models" / model) ==
          doctest::Approx(first_weight(straight_run / "models" / model)));
  }
  CHECK(first_weight(run / "models" / "global_round_4.safetensors") == doctest::Approx(4));
  CHECK(fs::exists(run / "report.html"));
  CHECK(all_gone_within(run.string(), 5 * kRunTimeScale));
}
