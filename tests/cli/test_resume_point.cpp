// What flare-run --resume RUN_DIR goes on from, and each refusal before
// anything starts: no folder, no job.toml, no checkpoint (with each refused
// file's reason); a run that already succeeded is found finished.
#include "cli/resume_point.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "cli/input_checks.hpp"
#include "temp_folder.hpp"

namespace fs = std::filesystem;
using flare::cli::find_resume_point;
using flare::cli::InputError;

namespace {

// A run folder as flare-run leaves it: job.toml, checkpoints/, metrics.jsonl.
struct RunFolder {
  flare::testing::TempFolder temp;
  fs::path root = temp.path() / "workspace" / "run-1";

  RunFolder() {
    flare::jobspec::JobSpec job;
    job.name = "resumable";
    job.num_rounds = 4;
    job.data_dir = temp.path() / "data";
    job.workspace = temp.path() / "workspace";
    job.sites = {{.name = "site-1"}, {.name = "site-2"}};
    job.trainer = {.name = "cifar10"};
    job.aggregator = {.name = "fedavg"};
    fs::create_directories(root);
    flare::jobspec::export_job(job, root);
  }
  fs::path checkpoint(std::int64_t round) const {
    flare::checkpoint::RoundCheckpoint c;
    c.round = round;
    c.job_fingerprint = "any";
    c.rng_state = "rng";
    return flare::checkpoint::write_checkpoint(root / "checkpoints", c, /*keep=*/10);
  }
  void metrics_line(const std::string& line) const {
    std::ofstream(root / "metrics.jsonl", std::ios::app) << line << "\n";
  }
};

std::string refusal(const fs::path& run_dir) {
  try {
    find_resume_point(run_dir);
  } catch (const InputError& e) {
    return e.what();
  }
  return "accepted";
}

}  // namespace

TEST_CASE("resumes after the newest checkpoint, naming its round and file") {
  RunFolder run;
  run.checkpoint(1);
  const auto file = run.checkpoint(2);
  const auto point = find_resume_point(run.root);
  CHECK(point.run_dir == fs::canonical(run.root));
  CHECK(point.job.name == "resumable");
  CHECK(point.job.num_rounds == 4);
  CHECK(!point.finished_rounds);
  CHECK(point.round == 2);
  CHECK(point.checkpoint_file == file);
}

TEST_CASE("the latest link resolves to the run folder it names") {
  RunFolder run;
  run.checkpoint(1);
  fs::create_directory_symlink("run-1", run.temp.path() / "workspace" / "latest");
  CHECK(find_resume_point(run.temp.path() / "workspace" / "latest").run_dir ==
        fs::canonical(run.root));
}

TEST_CASE("refuses a folder that does not exist, naming it") {
  RunFolder run;
  const auto missing = run.temp.path() / "workspace" / "run-9";
  CHECK(refusal(missing) ==
        "--resume " + missing.string() + ": expected a run folder, found no such folder");
}

TEST_CASE("refuses a folder without job.toml") {
  RunFolder run;
  fs::remove(run.root / "job.toml");
  CHECK(refusal(run.root) == "--resume " + run.root.string() +
                                 ": expected a run folder of flare-run, found no job.toml in " +
                                 fs::canonical(run.root).string());
}

TEST_CASE("refuses a run without a checkpoint: it completed no round") {
  RunFolder run;
  const auto root = fs::canonical(run.root);
  CHECK(refusal(run.root) == "nothing to resume in " + root.string() + ": no checkpoint in " +
                                 (root / "checkpoints").string() +
                                 " (one is written after each round: the run completed none)");
}

TEST_CASE("a truncated newest checkpoint is refused with its reason and the older one used") {
  RunFolder run;
  const auto older = run.checkpoint(1);
  const auto newest = run.checkpoint(2);
  fs::resize_file(newest, fs::file_size(newest) - 5);
  const auto point = find_resume_point(run.root);
  CHECK(point.round == 1);
  CHECK(point.checkpoint_file == older);
}

TEST_CASE("refuses a run whose every checkpoint is damaged, with each file's reason") {
  RunFolder run;
  const auto only = run.checkpoint(1);
  fs::resize_file(only, fs::file_size(only) - 5);
  const std::string message = refusal(run.root);
  const auto root = fs::canonical(run.root);
  CHECK(message.starts_with("nothing to resume in " + root.string() + ": no checkpoint in " +
                            (root / "checkpoints").string() +
                            " that verifies (refused: checkpoint_round_1.ckpt: truncated"));
  CHECK(message.ends_with(")"));
}

TEST_CASE("a temp file of an interrupted write is no checkpoint") {
  RunFolder run;
  const auto file = run.checkpoint(1);
  fs::copy_file(file, run.root / "checkpoints" / ".checkpoint_round_2.ckpt.tmp-1");
  fs::copy_file(file, run.root / "checkpoints" / "checkpoint_round_02.ckpt");
  CHECK(find_resume_point(run.root).round == 1);
}

TEST_CASE("a run that already succeeded is finished, checkpoint or not") {
  RunFolder run;
  run.metrics_line(R"({"kind": "global", "round": 4})");
  run.metrics_line(R"({"kind": "job", "status": "succeeded", "rounds_completed": 4})");
  const auto point = find_resume_point(run.root);
  REQUIRE(point.finished_rounds);
  CHECK(*point.finished_rounds == 4);
}

TEST_CASE("a run that failed or was interrupted can be resumed") {
  RunFolder run;
  run.checkpoint(3);
  run.metrics_line(R"({"kind": "job", "status": "failed", "rounds_completed": 3})");
  run.metrics_line(R"({"kind": "site", "round": 4, "site": "site-1"})");  // killed mid-line next
  run.metrics_line(R"({"kind": "job", "sta)");
  const auto point = find_resume_point(run.root);
  CHECK(!point.finished_rounds);
  CHECK(point.round == 3);
}
