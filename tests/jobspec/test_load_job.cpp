// load_job on valid files: the shipped seed job, defaults, paths, sites, plugins.
#include <doctest/doctest.h>

#include "job_files.hpp"
#include "jobspec/job_spec.hpp"

namespace fs = std::filesystem;
using flare::jobspec::JobSpec;
using flare::jobspec::load_job;
using flare::jobspec::SiteSpec;

TEST_CASE("loads the shipped cifar10 job with its values") {
  const fs::path jobs = fs::path(FLARE_SOURCE_DIR) / "jobs";
  const JobSpec spec = load_job(jobs / "cifar10.toml");
  CHECK(spec.source == (jobs / "cifar10.toml").lexically_normal());
  CHECK(spec.name == "cifar10");
  CHECK(spec.num_rounds == 5);
  CHECK(spec.min_clients == 2);
  CHECK(spec.seed == 0);
  CHECK(spec.workspace == (fs::path(FLARE_SOURCE_DIR) / "workspace/cifar10").lexically_normal());
  CHECK(spec.use_tracking == false);
  CHECK(spec.plugin_path.empty());
  CHECK(spec.n_clients == 2);
  CHECK(spec.site_defaults == SiteSpec{.name = {}, .devices = 2});
  CHECK(spec.sites == std::vector<SiteSpec>{{"site-1", 2}, {"site-2", 2}});
  CHECK(spec.data_dir == (fs::path(FLARE_SOURCE_DIR) / "data/cifar10").lexically_normal());
  CHECK(spec.data_split == "iid");
  CHECK(spec.data_alpha == 0.5);
  CHECK(spec.trainer.name == "cifar10");
  CHECK(spec.trainer.path.empty());
  CHECK(spec.trainer.config == nlohmann::json{{"batch_size", 4},
                                              {"lr", 0.001},
                                              {"momentum", 0.9},
                                              {"local_epochs", 1},
                                              {"algorithm", "fedavg"},
                                              {"val_fraction", 0.2},
                                              {"shard_test_set", true}});
  CHECK(spec.trainer.config["batch_size"].is_number_integer());
  CHECK(spec.aggregator.name == "fedavg");
  CHECK(spec.aggregator.config == nlohmann::json{{"weight", "num_samples"}});
  CHECK(spec.key_metric == "val_acc");
  CHECK(spec.round_timeout_s == 3600);
  CHECK(spec.worker_start_timeout_s == 300);
  CHECK(spec.wire_dtype == "float32");
  CHECK(spec.server_host == "127.0.0.1");
  CHECK(spec.server_port == 0);
}

TEST_CASE("fills every default but the trainer and the data, which a job names") {
  const JobFolder folder;
  const CurrentDirectory cwd(folder.root());
  const JobSpec spec = load_job(folder.write_job("minimal.toml", ""));
  CHECK(spec.name == "cifar10");
  CHECK(spec.num_rounds == 5);
  CHECK(spec.n_clients == 2);
  CHECK(spec.min_clients == 2);
  CHECK(spec.sites == std::vector<SiteSpec>{{"site-1", 2}, {"site-2", 2}});
  CHECK(spec.workspace == folder.root() / "workspace/cifar10");
  CHECK(spec.data_dir == folder.root() / "data");
  CHECK(spec.trainer.name == "cifar10");
  CHECK(spec.trainer.config == nlohmann::json::object());
  CHECK(spec.aggregator.name == "fedavg");
  CHECK(spec.round_timeout_s == 3600);
  CHECK(spec.worker_start_timeout_s == 300);
}

TEST_CASE("defaults min_clients to the client count") {
  const JobFolder folder;
  const JobSpec spec = load_job(folder.write_job("job.toml", "[clients]\ncount = 7\n"));
  CHECK(spec.n_clients == 7);
  CHECK(spec.min_clients == 7);
  CHECK(spec.sites.size() == 7);
  CHECK(spec.sites.back().name == "site-7");
}

TEST_CASE("resolves relative paths in the file against the file's folder") {
  const JobFolder folder;
  const fs::path file = folder.write("jobs/job.toml",
                                     "[job]\n"
                                     "workspace = \"../runs/a/\"\n"
                                     "plugin_path = [\"plugins\", \"/opt/flare/plugins\"]\n"
                                     "[data]\n"
                                     "dir = \"./data\"\n"
                                     "[trainer]\n"
                                     "path = \"lib/libmine.so\"\n");
  const JobSpec spec = load_job(file);
  CHECK(spec.workspace == folder.root() / "runs/a");
  CHECK(spec.plugin_path ==
        std::vector<fs::path>{folder.root() / "jobs/plugins", "/opt/flare/plugins"});
  CHECK(spec.data_dir == folder.root() / "jobs/data");
  CHECK(spec.trainer.path == folder.root() / "jobs/lib/libmine.so");
  CHECK(spec.trainer.name.empty());
}

TEST_CASE("applies per-site device overrides") {
  const JobFolder folder;
  const JobSpec spec = load_job(folder.write_job("job.toml",
                                             "[clients]\ncount = 3\ndevices = 2\n"
                                             "[sites.site-2]\ndevices = 4\n"));
  CHECK(spec.sites == std::vector<SiteSpec>{{"site-1", 2}, {"site-2", 4}, {"site-3", 2}});
}

TEST_CASE("reads whole-number timeouts and keeps fractional ones") {
  const JobFolder folder;
  const JobSpec spec = load_job(folder.write_job("job.toml",
                                             "[server]\nround_timeout_s = 90\n"
                                             "worker_start_timeout_s = 2.5\nport = 8443\n"));
  CHECK(spec.round_timeout_s == 90.0);
  CHECK(spec.worker_start_timeout_s == 2.5);
  CHECK(spec.server_port == 8443);
}

TEST_CASE("passes nested plugin config through as JSON") {
  const JobFolder folder;
  const JobSpec spec = load_job(folder.write_job("job.toml",
                                             "[aggregator]\nplugin = \"fedavg\"\n"
                                             "[aggregator.config]\nweights = [1, 2.5]\n"
                                             "server_opt = { name = \"adam\", beta = 0.9 }\n"));
  CHECK(spec.aggregator.config ==
        nlohmann::json::parse(
            R"({"weights": [1, 2.5], "server_opt": {"name": "adam", "beta": 0.9}})"));
}

TEST_CASE("reads a job from text as if from the named file, which need not exist") {
  const JobFolder folder;
  const fs::path file = folder.root() / "never-written/job.toml";
  const JobSpec spec = flare::jobspec::load_job_text(
      "[clients]\ncount = 3\n[data]\ndir = \"cifar\"\n[trainer]\nplugin = \"cifar10\"\n", file,
      {"clients.count=1"});
  CHECK(spec.source == file);
  CHECK(spec.n_clients == 1);
  CHECK(spec.data_dir == folder.root() / "never-written/cifar");
  CHECK(message_of<flare::jobspec::JobSpecError>([&] {
          flare::jobspec::load_job_text("[job]\nnum_rounds = 0\n", file);
        }) == file.string() + ":2: job.num_rounds: expected an integer from 1 to 1000000, "
                              "found the integer 0");
}
