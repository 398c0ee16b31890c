// A job's folder on the long-running server: rounds counted from its metrics,
// the table read back after a restart, and which model file an admin gets.
#include <doctest/doctest.h>

#include <fstream>

#include "checkpoint/round_checkpoint.hpp"
#include "deploy/job_folder.hpp"
#include "temp_folder.hpp"

using namespace flare::deploy;

namespace {

const std::string kJobToml = R"(
[job]
name = "restored"
num_rounds = 4
[clients]
count = 2
devices = 1
accelerator = "cpu"
[data]
dir = "/data"
[trainer]
plugin = "cifar10"
)";

// The checkpoint its server writes after `round` (checkpoint/round_checkpoint.hpp).
std::filesystem::path write_checkpoint_of(const JobFolder& folder, int64_t round) {
  flare::checkpoint::RoundCheckpoint checkpoint;
  checkpoint.round = round;
  checkpoint.rng_state = "rng";
  checkpoint.job_fingerprint = "restored";
  return flare::checkpoint::write_checkpoint(folder.checkpoint_dir(), checkpoint);
}

JobRecord job_named(const std::string& id) {
  JobRecord job;
  job.id = id;
  job.job_toml = kJobToml;
  job.submitted_by = "boss@org.com";
  job.submitted_at = 1000;
  return job;
}

}  // namespace

TEST_CASE("a round is done once every site's update went into it") {
  flare::testing::TempFolder dir;
  const JobFolder folder(dir.path() / "job-1");
  create_job_folder(folder, job_named("job-1"));
  CHECK(rounds_done(folder, 2) == 0);  // no metrics yet
  std::ofstream(folder.metrics_file())
      << R"({"kind": "site", "round": 1, "site": "site-1"})" << "\n"
      << R"({"kind": "site", "round": 1, "site": "site-2"})" << "\n"
      << R"({"kind": "global", "round": 1})" << "\n"
      << R"({"kind": "site", "round": 2, "site": "site-2"})" << "\n"
      << R"({"kind": "site", "round": 2, "si)";  // a line being written
  CHECK(rounds_done(folder, 2) == 1);
  std::ofstream(folder.metrics_file(), std::ios::app)
      << "\n" << R"({"kind": "job", "status": "failed", "rounds_completed": 3})" << "\n";
  CHECK(rounds_done(folder, 2) == 3);
}

TEST_CASE("after a restart the table is read back: ended jobs as they ended, cut-off ones without a checkpoint failed") {
  flare::testing::TempFolder dir;
  const auto jobs = dir.path() / "jobs";
  create_job_folder(JobFolder(jobs / "job-2"), job_named("job-2"));
  write_outcome(JobFolder(jobs / "job-2"), {JobState::finished, ""});
  create_job_folder(JobFolder(jobs / "job-10"), job_named("job-10"));
  std::filesystem::create_directories(jobs / "not-a-job");
  int64_t next_id = 0;
  const auto restored = read_jobs(jobs, next_id);
  CHECK(next_id == 11);
  REQUIRE(restored.size() == 2);
  CHECK(restored[0].id == "job-2");  // by number, not by name
  CHECK(restored[0].state == JobState::finished);
  CHECK(restored[0].name == "restored");
  CHECK(restored[0].num_rounds == 4);
  CHECK(restored[0].sites == std::vector<std::string>{"site-1", "site-2"});
  CHECK(restored[0].submitted_by == "boss@org.com");
  CHECK(restored[1].id == "job-10");
  CHECK(restored[1].state == JobState::failed);
  CHECK(restored[1].failure ==
        "the server stopped before the job ended, with nothing to resume: no checkpoint in " +
            (jobs / "job-10" / "checkpoints").string() +
            " (one is written after each round: the run completed none)");
  CHECK(restored[1].resumed_after_round == -1);
}

TEST_CASE("a cut-off job with a checkpoint and its port is read back running, to be resumed there") {
  flare::testing::TempFolder dir;
  const JobFolder folder(dir.path() / "jobs" / "job-1");
  create_job_folder(folder, job_named("job-1"));
  write_port(folder, 8105);
  write_checkpoint_of(folder, 1);
  write_checkpoint_of(folder, 2);
  int64_t next_id = 0;
  const auto restored = read_jobs(dir.path() / "jobs", next_id);
  REQUIRE(restored.size() == 1);
  CHECK(restored[0].state == JobState::running);
  CHECK(restored[0].port == 8105);
  CHECK(restored[0].resumed_after_round == 2);
  CHECK(restored[0].failure.empty());
}

TEST_CASE("a cut-off job is failed, saying why, when its checkpoint is damaged or its port unknown") {
  flare::testing::TempFolder dir;
  const JobFolder damaged(dir.path() / "jobs" / "job-1");
  create_job_folder(damaged, job_named("job-1"));
  write_port(damaged, 8105);
  const auto file = write_checkpoint_of(damaged, 1);
  std::filesystem::resize_file(file, std::filesystem::file_size(file) - 1);
  const JobFolder portless(dir.path() / "jobs" / "job-2");
  create_job_folder(portless, job_named("job-2"));
  write_checkpoint_of(portless, 1);
  int64_t next_id = 0;
  const auto restored = read_jobs(dir.path() / "jobs", next_id);
  REQUIRE(restored.size() == 2);
  CHECK(restored[0].state == JobState::failed);
  CHECK(restored[0].failure.starts_with(
      "the server stopped before the job ended, with nothing to resume: no checkpoint in " +
      damaged.checkpoint_dir().string() + " that verifies (refused: checkpoint_round_1.ckpt: "));
  CHECK(restored[1].state == JobState::failed);
  CHECK(restored[1].failure == "the server stopped before the job ended, and its port was not "
                               "recorded (" + portless.port_file().string() + ")");
}

TEST_CASE("an outcome wins over a checkpoint: an ended job is never resumed") {
  flare::testing::TempFolder dir;
  const JobFolder folder(dir.path() / "jobs" / "job-1");
  create_job_folder(folder, job_named("job-1"));
  write_port(folder, 8105);
  write_checkpoint_of(folder, 3);
  write_outcome(folder, {JobState::aborted, "the server is stopping"});
  int64_t next_id = 0;
  const auto restored = read_jobs(dir.path() / "jobs", next_id);
  REQUIRE(restored.size() == 1);
  CHECK(restored[0].state == JobState::aborted);
  CHECK(restored[0].resumed_after_round == -1);
}

TEST_CASE("an admin gets the newest global model, the best one, or a kept round") {
  flare::testing::TempFolder dir;
  const JobFolder folder(dir.path() / "job-1");
  std::filesystem::create_directories(folder.models_dir());
  CHECK_THROWS_AS(model_file(folder, "final"), std::out_of_range);
  for (const auto* name : {"global_round_2.safetensors", "global_round_10.safetensors",
                           "best.safetensors", "aggregator_state.safetensors"})
    std::ofstream(folder.models_dir() / name) << name;
  CHECK(model_file(folder, "final").filename() == "global_round_10.safetensors");
  CHECK(model_file(folder, "best").filename() == "best.safetensors");
  CHECK(model_file(folder, "2").filename() == "global_round_2.safetensors");
  CHECK_THROWS_WITH_AS(model_file(folder, "3"),
                       doctest::Contains("kept no model of round 3"), std::out_of_range);
  CHECK_THROWS_AS(model_file(folder, "../../etc/passwd"), std::invalid_argument);
  CHECK_THROWS_AS(model_file(folder, ""), std::invalid_argument);
}
