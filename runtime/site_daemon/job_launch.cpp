#include "site_daemon/job_launch.hpp"

#include <algorithm>
#include <sstream>

#include <toml++/toml.h>

#include "common/printable_text.hpp"
#include "jobspec/job_spec.hpp"
#include "storage/atomic_file.hpp"

namespace flare::site_daemon {

namespace {

constexpr std::size_t kMaxJobIdLength = 128;

bool alphanumeric(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

std::string path_list_override(std::string_view key_path,
                               const std::vector<std::filesystem::path>& paths) {
  toml::array list;
  for (const auto& p : paths) list.push_back(p.string());
  std::ostringstream text;
  text << list;
  return std::string(key_path) + "=" + text.str();
}

void make_private_folder(const std::filesystem::path& folder) {
  std::filesystem::create_directories(folder);
  std::filesystem::permissions(folder, std::filesystem::perms::owner_all,
                               std::filesystem::perm_options::replace);
}

}  // namespace

std::string job_id_problem(std::string_view job_id) {
  if (job_id.empty() || job_id.size() > kMaxJobIdLength)
    return "a job id must have 1 to " + std::to_string(kMaxJobIdLength) + " characters";
  if (!alphanumeric(job_id.front())) return "a job id must start with a letter or digit";
  const bool fits = std::all_of(job_id.begin(), job_id.end(), [](char c) {
    return alphanumeric(c) || c == '.' || c == '_' || c == '-';
  });
  return fits ? "" : "a job id may hold only letters, digits, '.', '_' and '-'";
}

JobLaunch prepare_job(const std::string& job_id, const std::string& job_toml,
                      const std::string& server, const SiteSetup& setup) {
  if (const auto problem = job_id_problem(job_id); !problem.empty())
    throw OfferRefused("job id \"" + common::printable(job_id) + "\": " + problem);
  JobLaunch launch;
  launch.job_id = job_id;
  launch.folder = setup.workspace / "jobs" / job_id;
  make_private_folder(launch.folder);
  // The offer as it came, so that a refusal's file:line can be looked up.
  const auto offered = launch.folder / "offer.toml";
  storage::write_file_atomically(offered, job_toml);

  std::vector<std::string> overrides{
      jobspec::string_override("job.workspace", launch.folder.string())};
  if (setup.data_dir)
    overrides.push_back(jobspec::string_override("data.dir", setup.data_dir->string()));
  if (!setup.plugin_path.empty())
    overrides.push_back(path_list_override("job.plugin_path", setup.plugin_path));
  jobspec::JobSpec job;
  try {
    job = jobspec::load_job_text(job_toml, offered, overrides);
  } catch (const jobspec::JobSpecError& e) {
    throw OfferRefused("its job spec does not load: " + common::printable(e.what()));
  }
  if (std::none_of(job.sites.begin(), job.sites.end(),
                   [&](const auto& s) { return s.name == setup.site; }))
    throw OfferRefused("the job does not name this site (" + setup.site + ") among its sites");
  try {
    jobspec::export_job(job, launch.folder);
  } catch (const std::exception& e) {
    throw OfferRefused("cannot write its job.toml: " + std::string(e.what()));
  }
  launch.job_file = launch.folder / "job.toml";
  const auto logs = launch.folder / "logs";
  const auto work = launch.folder / "work";
  make_private_folder(logs);
  make_private_folder(work);

  auto& argv = launch.argv;
  argv = {setup.job_program.string(), "--job", launch.job_file.string(), "--site", setup.site,
          "--server", server, "--tls-dir", setup.startup.string(), "--log-dir", logs.string(),
          "--work-dir", work.string()};
  if (setup.policy) argv.insert(argv.end(), {"--policy", setup.policy->string()});
  if (setup.nnodes) argv.insert(argv.end(), {"--nnodes", std::to_string(*setup.nnodes)});
  if (setup.node_rank) argv.insert(argv.end(), {"--node-rank", std::to_string(*setup.node_rank)});
  if (setup.master_addr) argv.insert(argv.end(), {"--master-addr", *setup.master_addr});
  if (setup.master_port)
    argv.insert(argv.end(), {"--master-port", std::to_string(*setup.master_port)});
  // Nodes of one site may share a workspace: each keeps a log of its own.
  launch.log_file = logs / (setup.site + (setup.node_rank && setup.nnodes.value_or(1) > 1
                                              ? ".node" + std::to_string(*setup.node_rank)
                                              : std::string()) +
                            ".log");
  return launch;
}

}  // namespace flare::site_daemon
