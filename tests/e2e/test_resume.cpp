// flare-run --resume RUN_DIR at its edges, with the plain-C trainer: what is
// refused before anything starts (exit 2, naming the folder and what is
// missing) and a run that already finished (exit 0, nothing run again).
// A run killed and resumed: test_resume_after_kill.cpp.
#include <doctest/doctest.h>

#include <string>

#include "e2e_support.hpp"

using namespace flare::e2e;
namespace fs = std::filesystem;

namespace {

// A finished one-round run: <dir>/ws/run-1.
fs::path finished_run(const TempFolder& dir) {
  write_text(dir.path() / "job.toml", c_trainer_job(dir.path() / "ws", 1, "", "devices = 1"));
  const auto r = run_command({FLARE_RUN_BIN, (dir.path() / "job.toml").string()});
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  return dir.path() / "ws" / "run-1";
}

}  // namespace

TEST_CASE("--resume of a folder that does not exist exits 2 naming it") {
  TempFolder dir;
  const auto missing = dir.path() / "ws" / "run-7";
  const auto r = run_command({FLARE_RUN_BIN, "--resume", missing.string()});
  CHECK(r.exit_code == 2);
  CHECK_MESSAGE(mentions(r.output, missing.string() + ": expected a run folder, found no such "
                                                      "folder"),
                r.output);
  CHECK_FALSE(fs::exists(dir.path() / "ws"));
}

TEST_CASE("--resume beside a job file is a usage error") {
  TempFolder dir;
  const auto r = run_command({FLARE_RUN_BIN, "job.toml", "--resume", dir.path().string()});
  CHECK(r.exit_code == 2);
  CHECK_MESSAGE(mentions(r.output, "expected no job file or job option beside it"), r.output);
}

TEST_CASE("--resume of a run that already succeeded says so and runs nothing") {
  TempFolder dir;
  const fs::path run = finished_run(dir);
  const auto metrics_before = read_json_lines(run / "metrics.jsonl");
  const auto r = run_command({FLARE_RUN_BIN, "--resume", (dir.path() / "ws" / "latest").string()});
  CHECK(r.exit_code == 0);
  CHECK_MESSAGE(mentions(r.output, fs::canonical(run).string() + " already finished (1 rounds)"),
                r.output);
  CHECK(read_json_lines(run / "metrics.jsonl") == metrics_before);
  CHECK_FALSE(fs::exists(dir.path() / "ws" / "run-2"));
}

TEST_CASE("--resume of a killed run that completed no round exits 2 before anything starts") {
  TempFolder dir;
  const fs::path run = fs::canonical(finished_run(dir));
  // As a run killed in its first round leaves it: no "job" line, no checkpoint.
  auto lines = read_json_lines(run / "metrics.jsonl");
  std::string kept;
  for (const auto& line : lines)
    if (line.value("kind", "") != "job") kept += line.dump() + "\n";
  write_text(run / "metrics.jsonl", kept);
  fs::remove_all(run / "checkpoints");
  const auto log_size = fs::file_size(run / "logs" / "site-1.log");

  const auto r = run_command({FLARE_RUN_BIN, "--resume", run.string()});
  CHECK(r.exit_code == 2);
  CHECK_MESSAGE(mentions(r.output, "nothing to resume in " + run.string() +
                                       ": no checkpoint in " + (run / "checkpoints").string()),
                r.output);
  CHECK(fs::file_size(run / "logs" / "site-1.log") == log_size);  // no site started
  CHECK_FALSE(fs::exists(dir.path() / "ws" / "run-2"));
}
