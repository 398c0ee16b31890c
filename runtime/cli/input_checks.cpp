#include "cli/input_checks.hpp"

#include <dirent.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>

#include "plugin_host/config_validation.hpp"
#include "plugin_host/host_services.hpp"
#include "plugin_host/plugin_instances.hpp"

namespace flare::cli {
namespace {

namespace fs = std::filesystem;

[[noreturn]] void refuse(const jobspec::JobSpec& job, const std::string& key,
                         const std::string& what) {
  throw InputError(job.source.string() + ": " + key + ": " + what);
}

[[noreturn]] void refuse(const jobspec::JobSpec& job, const std::string& key,
                         const std::string& expected, const std::string& found) {
  refuse(job, key, "expected " + expected + ", found " + found);
}

std::string quoted(const std::string& text) { return "\"" + text + "\""; }

// What the trainer's refusal is about: its data, or its options.
std::string trainer_key(flare_error_code code) {
  return code == FLARE_ERROR_NOT_FOUND || code == FLARE_ERROR_IO ? "data.dir" : "trainer.config";
}

}  // namespace

void check_data_dir(const jobspec::JobSpec& job) {
  const std::string expected = "a folder holding the job's data";
  const fs::path& dir = job.data_dir;
  std::error_code ec;
  const auto status = fs::status(dir, ec);
  if (!fs::exists(status)) refuse(job, "data.dir", expected, "nothing at " + dir.string());
  if (!fs::is_directory(status)) refuse(job, "data.dir", expected, "a file: " + dir.string());
  DIR* listing = ::opendir(dir.c_str());
  if (!listing)
    refuse(job, "data.dir", expected,
           "a folder that cannot be read: " + dir.string() + " (" + std::strerror(errno) + ")");
  ::closedir(listing);
}

void check_workspace(const jobspec::JobSpec& job) {
  const std::string expected = "a folder flare-run can create run folders in";
  // The nearest part of the path that exists: the folders below it are made
  // at the start, the run folder inside the last.
  fs::path existing = job.workspace;
  std::error_code ec;
  while (!fs::exists(fs::status(existing, ec)) && existing.has_relative_path())
    existing = existing.parent_path();
  if (!fs::is_directory(fs::status(existing, ec)))
    refuse(job, "job.workspace", expected, "a file: " + existing.string());
  // Tried, then removed: permission bits say nothing of a read-only mount,
  // nor to root.
  std::string probe = (existing / ".flare-write-check-XXXXXX").string();
  if (::mkdtemp(probe.data())) {
    ::rmdir(probe.c_str());
    return;
  }
  const int error = errno;
  if (error == EACCES || error == EPERM || error == EROFS)
    refuse(job, "job.workspace", expected,
           "a folder this process cannot write: " + existing.string() + " (" +
               std::strerror(error) + ")");
  // A full or failing disk is not the job's fault: a failed run, not bad input.
  throw std::runtime_error("cannot create a run folder in " + existing.string() + ": " +
                           std::strerror(error));
}

void check_server_host(const jobspec::JobSpec& job) {
  const std::string expected = "a name or address of this machine to listen on";
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  if (const int rc = ::getaddrinfo(job.server_host.c_str(), "0", &hints, &found); rc != 0)
    refuse(job, "server.host", expected,
           quoted(job.server_host) + " (" + ::gai_strerror(rc) + ")");
  const std::unique_ptr<addrinfo, void (*)(addrinfo*)> addresses(found, ::freeaddrinfo);
  // Bound on any free port and let go: the server binds its own port later.
  int error = EADDRNOTAVAIL;
  for (const addrinfo* a = found; a; a = a->ai_next) {
    const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      error = errno;
      continue;
    }
    const bool bound = ::bind(fd, a->ai_addr, a->ai_addrlen) == 0;
    if (!bound) error = errno;
    ::close(fd);
    if (bound) return;
  }
  refuse(job, "server.host", expected,
         quoted(job.server_host) + ", where no socket can listen (" + std::strerror(error) + ")");
}

JobPlugins load_job_plugins(const jobspec::JobSpec& job) {
  return {host::load_plugin(
              {job.trainer.name, job.trainer.path, job.plugin_path, job.trainer.version},
              FLARE_PLUGIN_TRAINER),
          host::load_plugin(
              {job.aggregator.name, job.aggregator.path, job.plugin_path, job.aggregator.version},
              FLARE_PLUGIN_AGGREGATOR)};
}

void validate_plugin_configs(const jobspec::JobSpec& job, const JobPlugins& plugins,
                             const PlannedRank& first_rank) {
  const host::HostServices services;  // errors and logging; a group of one rank
  const jobspec::SiteSpec& site = job.sites.front();
  const std::string data_dir = job.data_dir.string();
  const std::string data_json = jobspec::data_table(job).dump();
  flare_worker_info worker{};
  worker.site_name = site.name.c_str();
  worker.site_index = 0;
  worker.num_sites = static_cast<int32_t>(job.sites.size());
  worker.world_size = first_rank.world_size;
  worker.local_world_size = first_rank.local_world_size;
  worker.device = first_rank.device;
  worker.num_threads = first_rank.num_threads;
  worker.seed = job.seed;
  worker.data_dir = data_dir.c_str();
  worker.work_dir = nullptr;  // no run folder exists yet
  worker.data_json = data_json.c_str();
  try {
    host::validate_trainer_config(plugins.trainer, job.trainer.config.dump(), worker, services);
  } catch (const host::PluginCallError& e) {
    refuse(job, trainer_key(e.code()), e.what());
  }
  try {
    host::validate_aggregator_config(plugins.aggregator, job.aggregator.config.dump(), services);
  } catch (const host::PluginCallError& e) {
    refuse(job, "aggregator.config", e.what());
  }
}

}  // namespace flare::cli
