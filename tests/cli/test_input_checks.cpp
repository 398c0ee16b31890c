// What flare-run checks before it starts anything: each problem is an
// InputError naming the job file and the key.
#include "cli/input_checks.hpp"

#include <doctest/doctest.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "temp_folder.hpp"

namespace fs = std::filesystem;
using flare::cli::InputError;
using flare::jobspec::JobSpec;

namespace {

// A job read from `dir`/job.toml whose data folder and workspace are in `dir`.
JobSpec job_in(const flare::testing::TempFolder& folder) {
  const fs::path& dir = folder.path();
  JobSpec job;
  job.source = dir / "job.toml";
  job.data_dir = dir / "data";
  job.workspace = dir / "workspace";
  job.sites = {{.name = "site-1"}, {.name = "site-2"}};
  job.trainer = {.name = "validating", .path = FLARE_VALIDATING_TRAINER};
  job.aggregator = {.name = "fedavg", .path = FLARE_FEDAVG_PLUGIN};
  fs::create_directories(job.data_dir);
  // Open to every user, so that the checks made as another one (AsOrdinaryUser)
  // meet only the permissions a test sets.
  fs::permissions(dir, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                           fs::perms::others_read | fs::perms::others_exec);
  return job;
}

// The InputError's message `check` throws for `job`, or "accepted".
template <class Check>
std::string verdict(Check check, const JobSpec& job) {
  try {
    check(job);
  } catch (const InputError& e) {
    return e.what();
  }
  return "accepted";
}

// Checks made as an ordinary user meets them: root reads and writes any folder
// whatever its mode. Changing the file-system uid away from 0 drops root's
// file capabilities for this thread until it is changed back.
class AsOrdinaryUser {
 public:
  AsOrdinaryUser() : was_(::setfsuid(::geteuid() == 0 ? 65534 : ::geteuid())) {}
  ~AsOrdinaryUser() { ::setfsuid(was_); }

 private:
  int was_;
};

void write_file(const fs::path& file) { std::ofstream(file) << "x"; }

}  // namespace

TEST_CASE("a data folder that is missing, a file or unreadable is refused naming data.dir") {
  flare::testing::TempFolder dir;
  JobSpec job = job_in(dir);
  CHECK(verdict(flare::cli::check_data_dir, job) == "accepted");
  const std::string where = job.source.string() + ": data.dir: expected a folder holding the job's data, found ";

  job.data_dir = dir / "nowhere";
  CHECK(verdict(flare::cli::check_data_dir, job) == where + "nothing at " + job.data_dir.string());
  job.data_dir = dir / "a-file";
  write_file(job.data_dir);
  CHECK(verdict(flare::cli::check_data_dir, job) == where + "a file: " + job.data_dir.string());

  job.data_dir = dir / "locked";
  fs::create_directories(job.data_dir);
  fs::permissions(job.data_dir, fs::perms::owner_exec);
  {
    const AsOrdinaryUser user;
    CHECK(verdict(flare::cli::check_data_dir, job) ==
          where + "a folder that cannot be read: " + job.data_dir.string() +
              " (Permission denied)");
  }
  fs::permissions(job.data_dir, fs::perms::owner_all);  // so that it can be removed
}

TEST_CASE("a workspace that is a file, or lies under one, is refused naming job.workspace") {
  flare::testing::TempFolder dir;
  JobSpec job = job_in(dir);
  const std::string where =
      job.source.string() +
      ": job.workspace: expected a folder flare-run can create run folders in, found a file: ";
  write_file(dir / "a-file");
  job.workspace = dir / "a-file";
  CHECK(verdict(flare::cli::check_workspace, job) == where + (dir / "a-file").string());
  job.workspace = dir / "a-file/runs/mine";
  CHECK(verdict(flare::cli::check_workspace, job) == where + (dir / "a-file").string());
}

TEST_CASE("a workspace in a read-only folder is refused naming job.workspace") {
  flare::testing::TempFolder dir;
  JobSpec job = job_in(dir);
  fs::create_directories(dir / "read-only");
  fs::permissions(dir / "read-only", fs::perms::owner_read | fs::perms::owner_exec |
                                         fs::perms::others_read | fs::perms::others_exec);
  job.workspace = dir / "read-only/new/workspace";
  {
    const AsOrdinaryUser user;
    CHECK(verdict(flare::cli::check_workspace, job) ==
          job.source.string() +
              ": job.workspace: expected a folder flare-run can create run folders in, found a "
              "folder this process cannot write: " +
              (dir / "read-only").string() + " (Permission denied)");
  }
  fs::permissions(dir / "read-only", fs::perms::owner_all);
}

TEST_CASE("a workspace still to be made is accepted, and the check leaves nothing behind") {
  flare::testing::TempFolder dir;
  JobSpec job = job_in(dir);
  job.workspace = dir / "runs/new";
  CHECK(verdict(flare::cli::check_workspace, job) == "accepted");
  CHECK_FALSE(fs::exists(dir / "runs"));
  fs::create_directories(job.workspace);
  CHECK(verdict(flare::cli::check_workspace, job) == "accepted");
  CHECK(fs::is_empty(job.workspace));
}

TEST_CASE("a server host no socket can listen on is refused naming server.host") {
  flare::testing::TempFolder dir;
  JobSpec job = job_in(dir);
  for (const char* here : {"127.0.0.1", "localhost", "0.0.0.0"}) {
    job.server_host = here;
    CHECK_MESSAGE(verdict(flare::cli::check_server_host, job) == "accepted", here);
  }
  const std::string where = job.source.string() +
                            ": server.host: expected a name or address of this machine to listen "
                            "on, found ";
  job.server_host = "no-such-host.invalid";  // a name no resolver knows (RFC 2606)
  CHECK(verdict(flare::cli::check_server_host, job).starts_with(where + "\"no-such-host.invalid\" ("));
  job.server_host = "192.0.2.1";  // TEST-NET-1: never this machine's (RFC 5737)
  CHECK(verdict(flare::cli::check_server_host, job) ==
        where + "\"192.0.2.1\", where no socket can listen (Cannot assign requested address)");
}

TEST_CASE("a trainer's refused option names trainer.config, the plugin, the call and the option") {
  flare::testing::TempFolder dir;
  JobSpec job = job_in(dir);
  job.trainer.config = {{"bad", 1}};
  const auto plugins = flare::cli::load_job_plugins(job);
  const std::string message =
      verdict([&](const JobSpec& j) { flare::cli::validate_plugin_configs(j, plugins, {}); }, job);
  CHECK_MESSAGE(message.starts_with(job.source.string() + ": trainer.config: plugin 'validating' ("),
                message);
  CHECK_MESSAGE(message.find("validate_config") != std::string::npos, message);
  CHECK_MESSAGE(message.ends_with("option 'bad': not allowed"), message);
}

TEST_CASE("the trainer's refusal of its data names data.dir") {
  flare::testing::TempFolder dir;
  JobSpec job = job_in(dir);
  job.data_dir = "";  // the fixture refuses an empty data folder as missing data
  const auto plugins = flare::cli::load_job_plugins(job);
  const std::string message =
      verdict([&](const JobSpec& j) { flare::cli::validate_plugin_configs(j, plugins, {}); }, job);
  CHECK_MESSAGE(message.starts_with(job.source.string() + ": data.dir: plugin 'validating' ("),
                message);
}

TEST_CASE("an aggregator's refused option names aggregator.config") {
  flare::testing::TempFolder dir;
  JobSpec job = job_in(dir);
  job.aggregator.config = {{"weight", "loss"}};
  const auto plugins = flare::cli::load_job_plugins(job);
  const std::string message =
      verdict([&](const JobSpec& j) { flare::cli::validate_plugin_configs(j, plugins, {}); }, job);
  CHECK_MESSAGE(message.starts_with(job.source.string() + ": aggregator.config: plugin 'fedavg' ("),
                message);
  job.aggregator.config = {{"weight", "uniform"}};
  CHECK(verdict([&](const JobSpec& j) { flare::cli::validate_plugin_configs(j, plugins, {}); },
                job) == "accepted");
}
