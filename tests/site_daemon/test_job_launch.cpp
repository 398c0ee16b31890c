// What the site daemon makes of a job the server offers: the job's folder,
// job.toml with what is the site's own rewritten, the per-job client's argv.
#include <doctest/doctest.h>

#include <filesystem>

#include "jobspec/job_spec.hpp"
#include "offered_job.hpp"
#include "site_daemon/job_launch.hpp"
#include "temp_folder.hpp"

using namespace flare::site_daemon;
namespace fs = std::filesystem;

namespace {

SiteSetup setup_in(const fs::path& root) {
  SiteSetup setup;
  setup.site = "site-2";
  setup.startup = root / "startup";
  setup.workspace = root / "workspace";
  setup.job_program = "/opt/flare/bin/flare-client";
  return setup;
}

std::string refusal_of(const std::string& id, const std::string& toml, const SiteSetup& setup) {
  try {
    prepare_job(id, toml, "fl.example.com:8003", setup);
  } catch (const OfferRefused& e) {
    return e.what();
  }
  return "not refused";
}

}  // namespace

TEST_CASE("an offered job gets this site's data folder, workspace and plugin path in job.toml") {
  flare::testing::TempFolder root;
  auto setup = setup_in(root.path());
  setup.data_dir = root / "site-data";
  setup.plugin_path = {root / "site-plugins"};
  const auto launch = prepare_job("job-7", kOfferedJob, "fl.example.com:8003", setup);

  CHECK(launch.folder == root / "workspace" / "jobs" / "job-7");
  CHECK((fs::status(launch.folder).permissions() & fs::perms::all) == fs::perms::owner_all);
  const auto job = flare::jobspec::load_job(launch.job_file);
  CHECK(launch.job_file == launch.folder / "job.toml");
  CHECK(job.data_dir == root / "site-data");
  CHECK(job.workspace == launch.folder);
  CHECK(job.plugin_path == std::vector<fs::path>{root / "site-plugins"});
  CHECK(job.num_rounds == 2);  // the rest is the server's
  CHECK(job.trainer.name == "cifar10");
}

TEST_CASE("without --data-dir and --plugin-path the job keeps its own") {
  flare::testing::TempFolder root;
  const auto launch = prepare_job("j1", kOfferedJob, "h:1", setup_in(root.path()));
  const auto job = flare::jobspec::load_job(launch.job_file);
  CHECK(job.data_dir == "/server/data");
  CHECK(job.plugin_path == std::vector<fs::path>{"/server/plugins"});
  CHECK(job.workspace == launch.folder);  // never the server's
}

TEST_CASE("the per-job client is started with the job, the site, the job's server and the startup folder") {
  flare::testing::TempFolder root;
  auto setup = setup_in(root.path());
  setup.policy = root / "policy.toml";
  setup.nnodes = 2;
  setup.node_rank = 1;
  setup.master_addr = "10.0.0.1";
  setup.master_port = 29500;
  const auto launch = prepare_job("j1", kOfferedJob, "fl.example.com:8003", setup);
  const auto folder = root / "workspace" / "jobs" / "j1";
  const std::vector<std::string> expected{
      "/opt/flare/bin/flare-client", "--job", (folder / "job.toml").string(), "--site", "site-2",
      "--server", "fl.example.com:8003", "--tls-dir", (root / "startup").string(), "--log-dir",
      (folder / "logs").string(), "--work-dir", (folder / "work").string(), "--policy",
      (root / "policy.toml").string(), "--nnodes", "2", "--node-rank", "1", "--master-addr",
      "10.0.0.1", "--master-port", "29500"};
  CHECK(launch.argv == expected);
  CHECK(launch.log_file == folder / "logs" / "site-2.node1.log");
  CHECK(fs::is_directory(folder / "work"));
}

TEST_CASE("an offer whose spec does not load is refused naming the file and key; no job.toml") {
  flare::testing::TempFolder root;
  const auto message = refusal_of("j1", kBrokenJob, setup_in(root.path()));
  CHECK(message.find("does not load") != std::string::npos);
  CHECK(message.find("offer.toml:2") != std::string::npos);
  CHECK(message.find("num_rounds") != std::string::npos);
  CHECK_FALSE(fs::exists(root / "workspace" / "jobs" / "j1" / "job.toml"));
  CHECK(fs::exists(root / "workspace" / "jobs" / "j1" / "offer.toml"));  // for the operator
}

TEST_CASE("an offer that does not name this site is refused") {
  flare::testing::TempFolder root;
  auto setup = setup_in(root.path());
  setup.site = "site-9";  // the job has site-1 and site-2
  CHECK(refusal_of("j1", kOfferedJob, setup).find("does not name this site (site-9)") !=
        std::string::npos);
}

TEST_CASE("a job id that could reach outside the jobs folder is refused before anything is made") {
  flare::testing::TempFolder root;
  const auto setup = setup_in(root.path());
  for (const std::string& id : std::vector<std::string>{"", "..", "../escape", "a/b", ".hidden", "-x", "j\x1b[2J",
                               std::string(129, 'a')}) {
    CAPTURE(id);
    CHECK(refusal_of(id, kOfferedJob, setup).find("job id") != std::string::npos);
  }
  CHECK_FALSE(fs::exists(root / "workspace"));
  CHECK(job_id_problem("job-2024.11_a") == "");
}
