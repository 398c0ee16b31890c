// A site's policy applied to a job before any of its workers start: the
// trainer it names must be installed here, on the allow-list, with the file's
// SHA-256 and version the policy pins; the ranks it asks of this site within
// the policy's limit. What passes is handed to the ranks (the verified file
// and hash, which each rank checks again as it loads it).
#pragma once

#include <string>

#include "client/worker_group.hpp"
#include "jobspec/job_spec.hpp"
#include "policy/site_policy.hpp"

namespace flare::client {

// Why this site refuses the job, in words naming the plugin, file or limit;
// empty when it admits it, and then `launch` carries the verified trainer
// file and its SHA-256.
std::string admit_job(const policy::SitePolicy& policy, const jobspec::JobSpec& job,
                      GroupLaunch& launch);

// The policy entry ([plugins.<name>] with sha256 and version) of the plugin
// installed here under `name` (searching `search_path`, $FLARE_PLUGIN_PATH and
// the shipped plugins folder, as the loader does). Throws when it is missing
// or not a trainer.
std::string installed_plugin_entry(const std::string& name,
                                   const std::vector<std::filesystem::path>& search_path);

}  // namespace flare::client
