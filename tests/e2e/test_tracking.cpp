// --use_tracking end to end: a job of the plain-C trainer, which reports
// figures at steps it counts from the job's start, leaves train_step lines in
// metrics.jsonl (one per site and step) and TensorBoard event files that an
// independent reader (Python protobuf, tests/tracking/check_event_files.py)
// finds well-framed and in agreement with metrics.jsonl.
#include <doctest/doctest.h>

#include <map>
#include <string>

#include "e2e_support.hpp"

using namespace flare::e2e;
namespace fs = std::filesystem;

TEST_CASE("with tracking on, every step's figures reach metrics.jsonl and the event files") {
  TempFolder dir;
  const fs::path job = dir.path() / "job.toml";
  constexpr int kRounds = 3, kStepsPerRound = 40;
  write_text(job, c_trainer_job(dir.path() / "ws", kRounds,
                                "report_steps = " + std::to_string(kStepsPerRound)));
  const auto r = run_command({FLARE_RUN_BIN, job.string(), "--use_tracking"});
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  const fs::path run = dir.path() / "ws" / "run-1";
  CHECK(mentions(r.output,
                 "tracking: TensorBoard event files in " + (run / "tensorboard").string()));

  // One line per (site, step), steps 1 .. rounds x steps, each in its round.
  std::map<std::string, std::map<int64_t, nlohmann::json>> steps;
  for (const auto& line : lines_of_kind(run, "train_step")) {
    const std::string site = line["site"];
    CHECK_MESSAGE(steps[site].emplace(line["step"].get<int64_t>(), line).second, line.dump());
  }
  REQUIRE(steps.size() == 2);
  for (const auto& [site, lines] : steps) {
    CAPTURE(site);
    const int site_index = site == "site-1" ? 0 : 1;
    REQUIRE(lines.size() == kRounds * kStepsPerRound);
    for (const auto& [step, line] : lines) {
      CAPTURE(step);
      CHECK(line["round"] == (step - 1) / kStepsPerRound + 1);
      CHECK(line["train_loss"].get<double>() == doctest::Approx(1.0 / static_cast<double>(step)));
      CHECK(line["images_per_s"].get<double>() == 100.0 * static_cast<double>(step) + site_index);
      CHECK(line["epoch"] == 0);
    }
  }
  // The job's line stays the last.
  const auto all = read_json_lines(run / "metrics.jsonl");
  REQUIRE(!all.empty());
  CHECK(all.back()["kind"] == "job");

  for (const char* folder : {"site-1", "site-2", "global"})
    CHECK_MESSAGE(fs::is_directory(run / "tensorboard" / folder), folder);
  const auto check = run_command({"/usr/bin/python3",
                                  FLARE_SOURCE_DIR "/tests/tracking/check_event_files.py",
                                  run.string(), FLARE_TRACKING_PROTO_DIR, FLARE_PROTOC,
                                  (dir.path() / "py").string()});
  INFO(check.output);
  CHECK(check.exit_code == 0);
  CHECK(mentions(check.output, "checked 240 train_step"));
}

TEST_CASE("without tracking, no event files are written and the step lines still are") {
  TempFolder dir;
  const fs::path job = dir.path() / "job.toml";
  write_text(job, c_trainer_job(dir.path() / "ws", 1, "report_steps = 3", "devices = 1", 1));
  const auto r = run_command({FLARE_RUN_BIN, job.string()});
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  const fs::path run = dir.path() / "ws" / "run-1";
  CHECK_FALSE(fs::exists(run / "tensorboard"));
  CHECK(lines_of_kind(run, "train_step").size() == 3);
}
