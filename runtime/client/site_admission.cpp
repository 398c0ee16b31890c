#include "client/site_admission.hpp"

#include "plugin_host/plugin_loader.hpp"
#include "policy/file_digest.hpp"

namespace flare::client {

std::string admit_job(const policy::SitePolicy& policy, const jobspec::JobSpec& job,
                      GroupLaunch& launch) {
  const host::PluginRequest request{job.trainer.name, job.trainer.path, job.plugin_path};
  policy::PluginOnSite trainer;
  try {
    trainer.file = host::plugin_file(request);
  } catch (const host::PluginLoadError& e) {
    return std::string("the job's trainer is not installed on this site: ") + e.what();
  }
  // A job naming a file is held to the same list: the file's name and bytes.
  trainer.name = host::plugin_name(request);
  trainer.sha256 = policy::sha256_of_file(trainer.file);
  trainer.version_requirement = job.trainer.version;
  if (auto refusal = policy::plugin_refusal(policy, trainer); !refusal.empty()) return refusal;
  const std::string accelerator = launch.cuda_ids.empty() ? "cpu" : "cuda";
  if (auto refusal = policy::devices_refusal(policy, launch.world_size(), accelerator);
      !refusal.empty())
    return refusal;
  launch.trainer_file = trainer.file;
  launch.trainer_sha256 = trainer.sha256;
  return "";
}

std::string installed_plugin_entry(const std::string& name,
                                   const std::vector<std::filesystem::path>& search_path) {
  host::PluginRequest request{.name = name, .search_path = search_path};
  const auto file = host::plugin_file(request);
  policy::AllowedPlugin entry{.name = name, .sha256 = policy::sha256_of_file(file)};
  // Its version from the very bytes hashed: loaded through the verified descriptor.
  request.sha256 = entry.sha256;
  const auto plugin = host::load_plugin(request, FLARE_PLUGIN_TRAINER);
  if (plugin.descriptor().version) entry.version = plugin.descriptor().version;
  return "# " + file.string() + "\n" + policy::policy_entry(entry);
}

}  // namespace flare::client
