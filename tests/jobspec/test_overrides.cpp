// load_job with --set overrides: read as TOML values, validated like the file.
#include <doctest/doctest.h>

#include "job_files.hpp"
#include "jobspec/job_spec.hpp"

namespace fs = std::filesystem;
using flare::jobspec::JobSpec;
using flare::jobspec::JobSpecError;
using flare::jobspec::load_job;

namespace {

const char* const kJob =
    "[job]\nnum_rounds = 5\n"
    "[data]\ndir = \"data\"\n"
    "[trainer]\nplugin = \"cifar10\"\n"
    "[trainer.config]\nlr = 0.001\nbatch_size = 4\n";

}  // namespace

TEST_CASE("overrides a number from the command line") {
  const JobFolder folder;
  const JobSpec spec = load_job(folder.write("job.toml", kJob), {"job.num_rounds=3"});
  CHECK(spec.num_rounds == 3);
}

TEST_CASE("applies overrides in order so the last one wins") {
  const JobFolder folder;
  const JobSpec spec =
      load_job(folder.write("job.toml", kJob), {"job.num_rounds=3", "job.num_rounds=4"});
  CHECK(spec.num_rounds == 4);
}

TEST_CASE("overrides one key inside a plugin config and keeps the others") {
  const JobFolder folder;
  const JobSpec spec = load_job(folder.write("job.toml", kJob),
                                {"trainer.config.lr=0.01", "trainer.config.extra.depth=2"});
  CHECK(spec.trainer.config ==
        nlohmann::json::parse(R"({"lr": 0.01, "batch_size": 4, "extra": {"depth": 2}})"));
  CHECK(spec.trainer.name == "cifar10");
}

TEST_CASE("replaces a whole plugin config with an inline table") {
  const JobFolder folder;
  const JobSpec spec = load_job(folder.write("job.toml", kJob), {"trainer.config={ lr = 0.5 }"});
  CHECK(spec.trainer.config == nlohmann::json{{"lr", 0.5}});
}

TEST_CASE("creates tables the file does not have") {
  const JobFolder folder;
  const JobSpec spec =
      load_job(folder.write_job("job.toml", ""), {"clients.count=3", "server.port=9000"});
  CHECK(spec.n_clients == 3);
  CHECK(spec.sites.size() == 3);
  CHECK(spec.server_port == 9000);
}

TEST_CASE("takes a value that is not TOML as a string") {
  const JobFolder folder;
  const JobSpec spec = load_job(
      folder.write("job.toml", kJob),
      {"data.dir=/tmp/x", "job.name=mnist", "trainer.config.opt=sgd", "job.use_tracking=true"});
  CHECK(spec.data_dir == "/tmp/x");
  CHECK(spec.name == "mnist");
  CHECK(spec.trainer.config["opt"] == "sgd");
  CHECK(spec.use_tracking == true);
}

TEST_CASE("does not let a value smuggle in a second key") {
  const JobFolder folder;
  const JobSpec spec =
      load_job(folder.write("job.toml", kJob), {"trainer.config.note=1\nseed = 5"});
  CHECK(spec.trainer.config["note"] == "1\nseed = 5");
  CHECK(spec.seed == 0);
}

TEST_CASE("resolves relative override paths against the current directory") {
  const JobFolder folder;
  const fs::path file = folder.write_job("jobs/job.toml", "");
  const fs::path cwd = folder.root() / "elsewhere";
  fs::create_directories(cwd);
  const CurrentDirectory in(cwd);
  const JobSpec spec = load_job(file, {"job.workspace=runs/b", "job.plugin_path=[\"p\"]"});
  CHECK(spec.workspace == cwd / "runs/b");
  CHECK(spec.plugin_path == std::vector<fs::path>{cwd / "p"});
  CHECK(spec.data_dir == folder.root() / "jobs/data");  // from the file: against the file's folder
}

TEST_CASE("names the trainer and the data from the command line alone") {
  const JobFolder folder;
  const JobSpec spec = load_job(folder.write("job.toml", ""),
                                {"trainer.plugin=mine", "data.dir=/srv/data"});
  CHECK(spec.trainer.name == "mine");
  CHECK(spec.data_dir == "/srv/data");
}

TEST_CASE("rejects an unknown override key naming the --set") {
  const JobFolder folder;
  const fs::path file = folder.write("job.toml", kJob);
  CHECK(
      message_of<JobSpecError>([&] { load_job(file, {"job.num_round=3"}); }) ==
      file.string() +
          ": --set job.num_round: expected one of name, num_rounds, min_clients, "
                 "clients_per_round, client_fraction, seed, workspace, "
          "use_tracking, plugin_path, found unknown key num_round (did you mean num_rounds?)");
}

TEST_CASE("rejects an override of the wrong type naming the --set") {
  const JobFolder folder;
  const fs::path file = folder.write("job.toml", kJob);
  CHECK(message_of<JobSpecError>([&] { load_job(file, {"job.num_rounds=many"}); }) ==
        file.string() +
            ": --set job.num_rounds: expected an integer from 1 to 1000000, found the string "
            "\"many\"");
  CHECK(message_of<JobSpecError>([&] { load_job(file, {"job.num_rounds=0"}); }) ==
        file.string() +
            ": --set job.num_rounds: expected an integer from 1 to 1000000, found the integer 0");
}

TEST_CASE("names the key inside a table given by an override") {
  const JobFolder folder;
  const fs::path file = folder.write("job.toml", kJob);
  CHECK(
      message_of<JobSpecError>([&] { load_job(file, {"server={ port = -1 }"}); }) ==
      file.string() +
          ": --set server: server.port: expected an integer from 0 to 65535, found the integer -1");
}

TEST_CASE("rejects an override without a value") {
  CHECK(message_of<JobSpecError>([] { load_job("unused.toml", {"job.num_rounds"}); }) ==
        "--set job.num_rounds: expected key.path=value, found \"job.num_rounds\"");
}

TEST_CASE("rejects an override whose key is not a key path") {
  CHECK(message_of<JobSpecError>([] { load_job("unused.toml", {"job..x=1"}); }) ==
        "--set job..x: expected a dotted key path such as trainer.config.lr, found \"job..x\"");
}
