#include "deploy/job_submission.hpp"

#include <algorithm>

#include <toml++/toml.h>

#include "plugin_host/plugin_loader.hpp"
#include "server/federated_server.hpp"

namespace flare::deploy {

JobRecord record_of(const jobspec::JobSpec& job, const std::string& resolved_toml) {
  JobRecord record;
  record.name = job.name;
  record.job_toml = resolved_toml;
  record.num_rounds = job.num_rounds;
  for (const auto& site : job.sites) {
    record.sites.push_back(site.name);
    record.nodes[site.name] = site.nodes;
  }
  return record;
}

std::vector<std::string> server_overrides(const ServerSide& server) {
  toml::array folders;
  for (const auto& dir : server.plugin_path) folders.push_back(dir.string());
  std::ostringstream value;
  value << folders;
  return {"job.plugin_path=" + value.str()};
}

JobRecord check_submission(const std::string& toml, const std::string& file_name,
                           const ServerSide& server) {
  // The admin's name for the file, for messages only: its relative paths
  // mean nothing here (a site rewrites what is its own).
  const std::filesystem::path name =
      std::filesystem::path(file_name.empty() ? "job.toml" : file_name).filename();
  jobspec::JobSpec job;
  try {
    job = jobspec::load_job_text(toml, name, server_overrides(server));
  } catch (const jobspec::JobSpecError& e) {
    throw SubmissionError(std::string("invalid job spec: ") + e.what());
  }
  for (const auto& site : job.sites)
    if (std::find(server.project_sites.begin(), server.project_sites.end(), site.name) ==
        server.project_sites.end()) {
      std::string known;
      for (const auto& s : server.project_sites) known += (known.empty() ? "" : ", ") + s;
      throw SubmissionError(name.string() + ": the job names site '" + site.name +
                            "', which is not a site of this project (" +
                            (known.empty() ? "none provisioned" : known) + ")");
    }
  try {
    server::load_aggregator(job);
  } catch (const host::PluginLoadError& e) {
    throw SubmissionError(name.string() + ": aggregator: " + e.what());
  }
  return record_of(job, jobspec::to_toml(job));
}

}  // namespace flare::deploy
