// flare-run's contract at its edges, with the plain-C trainer so each run
// takes seconds: exit codes, bad input, exported configs. Failed and hung
// ranks: test_failure_containment.cpp.
#include <doctest/doctest.h>

#include <string>

#include "e2e_support.hpp"

using namespace flare::e2e;
namespace fs = std::filesystem;

TEST_CASE("a plain-C trainer runs two sites of two ranks to the end") {
  TempFolder dir;
  write_text(dir.path() / "job.toml", c_trainer_job(dir.path() / "ws", 3, ""));
  const auto r = run_command({FLARE_RUN_BIN, (dir.path() / "job.toml").string()});
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  const fs::path run = dir.path() / "ws" / "run-1";
  // Every round each rank adds 1 and the ranks and sites average: w = round.
  for (int round = 0; round <= 3; ++round) {
    CHECK(first_weight(run / "models" / ("global_round_" + std::to_string(round) +
                                         ".safetensors")) == doctest::Approx(round));
  }
  CHECK(first_weight(run / "models" / "best.safetensors") == doctest::Approx(3));
  CHECK(lines_of_kind(run, "site").size() == 2 * 3);
  CHECK(lines_of_kind(run, "global").size() == 3 + 1);
  CHECK(lines_of_kind(run, "failure").empty());
  CHECK(job_line(run) == nlohmann::json{{"kind", "job"}, {"status", "succeeded"},
                                        {"rounds_completed", 3}});
  for (const char* log : {"server.log", "site-1.log", "site-2.log", "site-1.rank0.log",
                          "site-1.rank1.log", "site-2.rank0.log", "site-2.rank1.log"}) {
    CHECK_MESSAGE(fs::exists(run / "logs" / log), "missing log " << log);
  }
}

TEST_CASE("a job spec with a wrong type exits 2 naming the file and the key") {
  TempFolder dir;
  const fs::path job = dir.path() / "bad.toml";
  write_text(job, "[job]\nnum_rounds = \"five\"\n");
  const auto r = run_command({FLARE_RUN_BIN, job.string()});
  CHECK(r.exit_code == 2);
  // The text is the contract: a job-spec error names the file and the key.
  CHECK_MESSAGE(r.output.find("bad.toml") != std::string::npos, r.output);
  CHECK_MESSAGE(r.output.find("job.num_rounds") != std::string::npos, r.output);
}

TEST_CASE("a trainer plugin that does not exist exits 2 before any process starts") {
  TempFolder dir;
  std::string spec = c_trainer_job(dir.path() / "ws", 1, "");
  spec.replace(spec.find("path = "), spec.find('\n', spec.find("path = ")) - spec.find("path = "),
               "plugin = \"no_such_trainer\"");
  write_text(dir.path() / "job.toml", spec);
  const auto r = run_command({FLARE_RUN_BIN, (dir.path() / "job.toml").string()});
  CHECK(r.exit_code == 2);
  // The text is the contract: the error names the plugin that was not found.
  CHECK_MESSAGE(r.output.find("no_such_trainer") != std::string::npos, r.output);
  CHECK_FALSE(fs::exists(dir.path() / "ws"));
}

TEST_CASE("an exported config runs unchanged") {
  TempFolder dir;
  write_text(dir.path() / "job.toml", c_trainer_job(dir.path() / "ws", 1, ""));
  const auto exported = run_command({FLARE_RUN_BIN, (dir.path() / "job.toml").string(),
                                     "--num-rounds", "2", "--export_config",
                                     (dir.path() / "exported").string()});
  REQUIRE_MESSAGE(exported.exit_code == 0, exported.output);
  CHECK_FALSE(fs::exists(dir.path() / "ws"));  // exporting trains nothing
  const auto r = run_command({FLARE_RUN_BIN, (dir.path() / "exported" / "job.toml").string()});
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(fs::exists(dir.path() / "ws" / "run-1" / "models" / "global_round_2.safetensors"));
}

TEST_CASE("a job asking for GPUs this build or machine lacks exits 2 before anything starts") {
  TempFolder dir;
  write_text(dir.path() / "job.toml", c_trainer_job(dir.path() / "ws", 1, "", "devices = [0, 1]"));
  const auto r = run_command({FLARE_RUN_BIN, (dir.path() / "job.toml").string()});
  CHECK(r.exit_code == 2);
  // The text is the contract: the error names the site and what it lacks.
  CHECK_MESSAGE(r.output.find("site-1") != std::string::npos, r.output);
  CHECK_MESSAGE(r.output.find("CUDA") != std::string::npos, r.output);
  CHECK_FALSE(fs::exists(dir.path() / "ws"));
}
