// to_toml / export_job: the resolved job written out loads back to the same job.
#include <doctest/doctest.h>
#include <toml++/toml.h>

#include "job_files.hpp"
#include "jobspec/job_spec.hpp"

namespace fs = std::filesystem;
using flare::jobspec::export_job;
using flare::jobspec::JobSpec;
using flare::jobspec::JobSpecError;
using flare::jobspec::load_job;
using flare::jobspec::to_toml;

namespace {

JobSpec reload(const JobSpec& spec, const fs::path& dir) {
  export_job(spec, dir);
  JobSpec loaded = load_job(dir / "job.toml");
  CHECK(loaded.source == dir / "job.toml");
  loaded.source = spec.source;  // the only field that names where it was read from
  return loaded;
}

}  // namespace

TEST_CASE("exports the shipped job so that it loads back equal") {
  const JobFolder folder;
  const JobSpec spec = load_job(fs::path(FLARE_SOURCE_DIR) / "jobs/cifar10.toml");
  CHECK(reload(spec, folder.root() / "export") == spec);
}

TEST_CASE("exports every field, overridden and odd values included, so that they load back equal") {
  const JobFolder folder;
  const fs::path file =
      folder.write("jobs/job.toml",
                   "[job]\nname = \"odd.job\"\nseed = 9007199254740993\nuse_tracking = true\n"
                   "plugin_path = [\"p 1\", \"/q\"]\n"
                   "[clients]\ncount = 3\ndevices = 1\noversubscribe = true\n"
                   "[sites.site-3]\ndevices = 5\n"
                   "[data]\ndir = \"d\"\nsplit = \"dirichlet\"\nalpha = 0.3\n"
                   "[trainer]\npath = \"lib/libx.so\"\nversion = \">=1.2, <2\"\n[trainer.config]\n\"odd key\" = \"quote \\\" backslash \\\\ tab \\t\"\n"
                   "tiny = 1e-300\nthird = 0.3333333333333333\nbig = 1e20\n"
                   "list = [1, [2.5, \"x\"], { a = true }]\nempty = {}\nwhen = 1979-05-27\n"
                   "[server]\nround_timeout_s = 12.75\nanswer_timeout_s = 2.5\nsave_every = 5\n"
                   "keep_last = 2\nwire_dtype = \"int8\"\nkey_metric_mode = \"min\"\n"
                   "heartbeat_interval_s = 0.5\nheartbeat_timeout_s = 1.5\n"
                   "reconnect_timeout_s = 42\nkeep_checkpoints = 7\n"
                   "host = \"0.0.0.0\"\nport = 65535\n");
  const JobSpec spec = load_job(
      file, {"job.min_clients=2", "job.client_fraction=0.34", "aggregator.plugin=fedavg",
             "aggregator.config.beta=0.9"});
  REQUIRE(spec.client_fraction == 0.34);
  REQUIRE(sampled_per_round(spec) == 2);  // ceil(0.34 * 3) = 2, at least min_clients
  REQUIRE(spec.heartbeat_timeout_s == 1.5);
  REQUIRE(spec.reconnect_timeout_s == 42);
  REQUIRE(spec.keep_checkpoints == 7);
  REQUIRE(spec.trainer.config["when"] == "1979-05-27");
  REQUIRE(spec.oversubscribe);
  REQUIRE(spec.answer_timeout_s == 2.5);
  REQUIRE(spec.save_every == 5);
  REQUIRE(spec.keep_last == 2);
  REQUIRE(spec.wire_dtype == "int8");
  REQUIRE(spec.key_metric_mode == "min");
  REQUIRE(spec.data_split == "dirichlet");
  REQUIRE(spec.data_alpha == 0.3);
  REQUIRE(spec.trainer.version == ">=1.2, <2");
  const JobSpec loaded = reload(spec, folder.root() / "out/nested");
  CHECK(loaded == spec);
  CHECK(loaded.trainer.config["tiny"].get<double>() == 1e-300);
  CHECK(loaded.trainer.config["big"].is_number_float());
}

TEST_CASE("writes every default out explicitly") {
  const JobFolder folder;
  const CurrentDirectory cwd(folder.root());
  const JobSpec spec = load_job(folder.write_job("minimal.toml", ""));
  const toml::table doc = toml::parse(to_toml(spec));
  CHECK(doc["job"]["name"].value<std::string>() == "cifar10");
  CHECK(doc["job"]["num_rounds"].value<int64_t>() == 5);
  CHECK(doc["job"]["min_clients"].value<int64_t>() == 2);
  CHECK(doc["job"]["seed"].value<int64_t>() == 0);
  CHECK(doc["job"]["workspace"].value<std::string>() ==
        (folder.root() / "workspace/cifar10").string());
  CHECK(doc["job"]["use_tracking"].value<bool>() == false);
  CHECK(doc["job"]["plugin_path"].is_array());
  CHECK(doc["clients"]["count"].value<int64_t>() == 2);
  CHECK(doc["clients"]["oversubscribe"].value<bool>() == false);
  CHECK(doc["server"]["answer_timeout_s"].value<double>() == 30);
  CHECK(doc["server"]["save_every"].value<int64_t>() == 1);
  CHECK(doc["server"]["keep_last"].value<int64_t>() == 0);
  CHECK(doc["server"]["wire_dtype"].value<std::string>() == "float32");
  CHECK(doc["clients"]["devices"].value<int64_t>() == 2);
  CHECK(doc["sites"]["site-1"]["devices"].value<int64_t>() == 2);
  CHECK(doc["sites"]["site-2"]["devices"].value<int64_t>() == 2);
  CHECK(doc["data"]["dir"].value<std::string>() == (folder.root() / "data").string());
  CHECK(doc["trainer"]["plugin"].value<std::string>() == "cifar10");
  CHECK(doc["trainer"]["config"].is_table());
  CHECK(doc["aggregator"]["plugin"].value<std::string>() == "fedavg");
  CHECK(doc["server"]["key_metric"].value<std::string>() == "val_acc");
  CHECK(doc["server"]["key_metric_mode"].value<std::string>() == "auto");
  CHECK(doc["server"]["round_timeout_s"].value<double>() == 3600.0);
  CHECK(doc["server"]["worker_start_timeout_s"].value<double>() == 300.0);
  CHECK(doc["server"]["host"].value<std::string>() == "127.0.0.1");
  CHECK(doc["server"]["port"].value<int64_t>() == 0);
}

TEST_CASE("writes floats in their shortest exact form") {
  const JobFolder folder;
  const JobSpec spec = load_job(fs::path(FLARE_SOURCE_DIR) / "jobs/cifar10.toml");
  const std::string text = to_toml(spec);
  CHECK(text.find("lr = 0.001\n") != std::string::npos);
  CHECK(text.find("round_timeout_s = 3600.0\n") != std::string::npos);
}

TEST_CASE("reports a folder it cannot export into as a write error, not a job error") {
  const JobFolder folder;
  const fs::path blocker = folder.write("file", "x");
  const std::string message = message_of<flare::jobspec::JobWriteError>(
      [&] { export_job(JobSpec{}, blocker / "sub"); });
  CHECK(message.starts_with((blocker / "sub").string() +
                            ": cannot create the folder to export the job into: "));
}

TEST_CASE("a full disk while exporting is a write error naming the file and the disk's reason") {
  const JobFolder folder;
  // Every write to /dev/full fails as a full disk does: ENOSPC.
  fs::create_directories(folder.root() / "out");
  fs::create_symlink("/dev/full", folder.root() / "out/job.toml");
  const JobSpec spec = load_job(fs::path(FLARE_SOURCE_DIR) / "jobs/cifar10.toml");
  const std::string message =
      message_of<flare::jobspec::JobWriteError>([&] { export_job(spec, folder.root() / "out"); });
  CHECK(message == (folder.root() / "out/job.toml").string() +
                       ": cannot write the job file: No space left on device");
}
