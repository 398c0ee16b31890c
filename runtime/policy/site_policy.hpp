// A site's local policy: which plugins it runs (by name, pinned to the
// SHA-256 of the installed library) and how many devices one job may use on
// it. Read from the site's policy file (flare-client --policy), checked
// against each job before any of its workers start. A site without a policy
// runs whatever its job names (one-machine runs).
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace flare::policy {

struct AllowedPlugin {
  std::string name;
  std::string sha256;   // of the library file, lowercase hex
  std::string version;  // the version that file states; empty: not recorded
};

struct SitePolicy {
  std::filesystem::path source;                  // the policy file
  std::map<std::string, AllowedPlugin> plugins;  // by name
  std::optional<int> max_devices;                // ranks one job may use here, all nodes together
  std::vector<std::string> accelerators;         // "cpu" / "cuda" allowed; empty: any
};

// A policy file that cannot be read or is wrong: "<file>:<line>: <key>:
// expected <what>, found <what>", as a job spec's errors.
class PolicyError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Defined in flare_jobspec (jobspec/read_site_policy.cpp): it reads TOML as a job does.
SitePolicy load_policy(const std::filesystem::path& file);
SitePolicy load_policy_text(std::string_view text, const std::filesystem::path& file);

// What a site checks a job's plugin by: its name, the file it resolved to,
// that file's SHA-256 and the job's version requirement (may be empty).
struct PluginOnSite {
  std::string name;
  std::filesystem::path file;
  std::string sha256;
  std::string version_requirement;
};

// Why the policy refuses the plugin, in words naming it; empty: allowed.
std::string plugin_refusal(const SitePolicy& policy, const PluginOnSite& plugin);
// Why the policy refuses `ranks` ranks on `accelerator`; empty: allowed.
std::string devices_refusal(const SitePolicy& policy, int ranks, const std::string& accelerator);

// The policy file's entry for an installed plugin, ready to paste:
// [plugins.<name>] with its sha256 and (when known) version.
std::string policy_entry(const AllowedPlugin& plugin);

}  // namespace flare::policy
