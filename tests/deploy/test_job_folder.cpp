// A job's folder on the long-running server: rounds counted from its metrics,
// the table read back after a restart, and which model file an admin gets.
#include <doctest/doctest.h>

#include <fstream>

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

TEST_CASE("after a restart the table is read back: ended jobs as they ended, cut-off ones failed") {
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
  CHECK(restored[1].failure == "the server stopped before the job ended");
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
