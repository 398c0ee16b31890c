// Reading a site's policy file (policy/site_policy.hpp) with the job spec's
// TOML readers, so its errors name file:line:key the way a job's do. Here,
// inside flare_jobspec, because those readers are its internals.
#include "policy/site_policy.hpp"

#include <algorithm>
#include <array>
#include <fstream>
#include <iterator>

#include <toml++/toml.h>

#include "document.hpp"
#include "jobspec/job_spec.hpp"
#include "table_reader.hpp"
#include "toml_text.hpp"
#include "policy/version_requirement.hpp"

namespace flare::policy {

namespace {

using jobspec::TableReader;

constexpr std::array<std::string_view, 2> kTopKeys = {"limits", "plugins"};
constexpr std::array<std::string_view, 2> kLimitKeys = {"max_devices", "accelerators"};
constexpr std::array<std::string_view, 2> kPluginKeys = {"sha256", "version"};
constexpr jobspec::IntegerRange kMaxDevicesRange{1, 1'000'000};

bool is_sha256(const std::string& s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

void read_limits(const TableReader& top, SitePolicy& policy) {
  const auto limits = top.table("limits");
  if (!limits) return;
  limits->allow_only(kLimitKeys);
  if (const auto max = limits->integer("max_devices", kMaxDevicesRange))
    policy.max_devices = static_cast<int>(*max);
  const toml::node* list = limits->find("accelerators");
  if (!list) return;
  const auto* array = list->as_array();
  if (!array) limits->fail("accelerators", "a list of \"cpu\" / \"cuda\"", jobspec::describe(*list));
  for (const auto& item : *array) {
    const auto value = item.value<std::string>();
    if (!value || (*value != "cpu" && *value != "cuda"))
      limits->fail("accelerators", "a list of \"cpu\" / \"cuda\"", jobspec::describe(item));
    policy.accelerators.push_back(*value);
  }
}

void read_plugins(const TableReader& top, SitePolicy& policy) {
  const auto plugins = top.table("plugins");
  if (!plugins) return;
  for (const auto& [key, value] : plugins->node()) {
    const std::string name(key.str());
    const auto entry = plugins->table(name);  // fails naming the key unless a table
    entry->allow_only(kPluginKeys);
    AllowedPlugin allowed{.name = name};
    allowed.sha256 = entry->string("sha256").value_or("");
    if (!is_sha256(allowed.sha256))
      entry->fail("sha256", "the library's SHA-256 as 64 lowercase hex digits "
                  "(flare-client --hash-plugin " + name + " prints it)",
                  allowed.sha256.empty() ? "none" : "the string " + jobspec::toml_string(allowed.sha256));
    allowed.version = entry->string("version").value_or("");
    if (!allowed.version.empty() && !parse_version(allowed.version))
      entry->fail("version", "the version the library states (\"1.0.0\")",
                  "the string " + jobspec::toml_string(allowed.version));
    policy.plugins.emplace(name, std::move(allowed));
  }
}

}  // namespace

SitePolicy load_policy_text(std::string_view text, const std::filesystem::path& file) {
  toml::table root;
  try {
    root = toml::parse(text, file.string());
  } catch (const toml::parse_error& error) {
    throw PolicyError(file.string() + ":" + std::to_string(error.source().begin.line) +
                      ": invalid TOML: " + std::string(error.description()));
  }
  SitePolicy policy;
  policy.source = file;
  try {
    const jobspec::Document doc(file);
    const TableReader top(root, "", doc);
    top.allow_only(kTopKeys);
    read_limits(top, policy);
    read_plugins(top, policy);
  } catch (const jobspec::JobSpecError& e) {
    throw PolicyError(e.what());  // the same "<file>:<line>: <key>: ..." words
  }
  return policy;
}

SitePolicy load_policy(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw PolicyError(file.string() + ": cannot read the site policy file");
  const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  return load_policy_text(text, file);
}

}  // namespace flare::policy
