#include "policy/site_policy.hpp"

#include <algorithm>

#include "policy/version_requirement.hpp"

namespace flare::policy {

std::string plugin_refusal(const SitePolicy& policy, const PluginOnSite& plugin) {
  const auto entry = policy.plugins.find(plugin.name);
  if (entry == policy.plugins.end())
    return "plugin '" + plugin.name + "' is not allowed by this site's policy";
  const AllowedPlugin& allowed = entry->second;
  if (plugin.sha256 != allowed.sha256)
    return "plugin '" + plugin.name + "' (" + plugin.file.string() + ") has SHA-256 " +
           plugin.sha256 + ", this site's policy allows " + allowed.sha256;
  if (plugin.version_requirement.empty()) return "";
  if (allowed.version.empty())
    return "the job asks for plugin '" + plugin.name + "' version " + plugin.version_requirement +
           "; this site's policy records no version for it";
  if (!VersionRequirement::parse(plugin.version_requirement).allows(allowed.version))
    return "the job asks for plugin '" + plugin.name + "' version " + plugin.version_requirement +
           "; this site allows version " + allowed.version;
  return "";
}

std::string devices_refusal(const SitePolicy& policy, int ranks, const std::string& accelerator) {
  if (policy.max_devices && ranks > *policy.max_devices)
    return "the job asks for " + std::to_string(ranks) + " devices on this site; its policy allows " +
           "at most " + std::to_string(*policy.max_devices);
  if (!policy.accelerators.empty() &&
      std::find(policy.accelerators.begin(), policy.accelerators.end(), accelerator) ==
          policy.accelerators.end())
    return "the job would run on " + accelerator + ", which this site's policy does not allow";
  return "";
}

std::string policy_entry(const AllowedPlugin& plugin) {
  // Names are letters, digits, '.', '_' and '-' (the job spec's rule): quoted
  // they are a TOML key whatever they look like.
  std::string out = "[plugins.\"" + plugin.name + "\"]\n";
  out += "sha256 = \"" + plugin.sha256 + "\"\n";
  if (!plugin.version.empty()) out += "version = \"" + plugin.version + "\"\n";
  return out;
}

}  // namespace flare::policy
