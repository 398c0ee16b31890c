#include "worker_group_keys.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>

#include "document.hpp"
#include "toml_text.hpp"

namespace flare::jobspec {
std::string devices_toml(const SiteSpec& site) {
  if (site.devices_auto) return toml_string("auto");
  if (site.device_ids.empty()) return std::to_string(site.devices);
  std::string out = "[";
  for (const int id : site.device_ids)
    out.append(out.size() > 1 ? ", " : "").append(std::to_string(id));
  return out + "]";
}

namespace {

// devices = N | [id, ...] | "auto"; each form replaces whatever the other two set.
void read_devices(const TableReader& table, SiteSpec& group) {
  const toml::node* node = table.find("devices");
  if (!node) return;
  const std::string expected = "an integer from " + std::to_string(kDevicesRange.min) + " to " +
                               std::to_string(kDevicesRange.max) +
                               ", a list of distinct CUDA device ids or \"auto\"";
  group.device_ids.clear();
  group.devices_auto = false;
  if (const auto count = node->value_exact<int64_t>()) {
    if (*count < kDevicesRange.min || *count > kDevicesRange.max) table.fail("devices", expected, describe(*node));
    group.devices = static_cast<int>(*count);
  } else if (const auto word = node->value_exact<std::string>()) {
    if (*word != "auto") table.fail("devices", expected, describe(*node));
    group.devices = 0;
    group.devices_auto = true;
  } else if (const toml::array* ids = node->as_array()) {
    if (ids->empty()) table.fail("devices", expected, "an empty array");
    if (ids->size() > static_cast<std::size_t>(kDevicesRange.max))
      table.fail("devices", expected, "an array of " + std::to_string(ids->size()));
    for (std::size_t i = 0; i < ids->size(); ++i) {
      const toml::node& item = *ids->get(i);
      const std::string item_path = table.key_path("devices") + "[" + std::to_string(i) + "]";
      const auto id = item.value_exact<int64_t>();
      if (!id || *id < 0 || *id > std::numeric_limits<int>::max())
        table.fail_at(item, item_path, "a CUDA device id (an integer >= 0)", describe(item));
      if (std::find(group.device_ids.begin(), group.device_ids.end(), *id) !=
          group.device_ids.end())
        table.fail_at(item, item_path, "a CUDA device id not listed before",
                      describe(item) + " twice");
      group.device_ids.push_back(static_cast<int>(*id));
    }
    group.devices = static_cast<int>(group.device_ids.size());
  } else {
    table.fail("devices", expected, describe(*node));
  }
}

// Combinations no machine can run. Defaults never conflict, so a conflict
// involves a key of `table`: the message names that one.
void reject_conflicts(const TableReader& table, const SiteSpec& group) {
  const bool cpu = group.accelerator == "cpu";
  const bool here_accelerator = table.find("accelerator") != nullptr;
  if (cpu && group.backend == "nccl") {
    if (table.find("backend") || !here_accelerator)
      table.fail("backend",
                 "\"auto\" or \"gloo\" with accelerator = \"cpu\" (NCCL runs on CUDA devices only)",
                 toml_string(group.backend));
    table.fail("accelerator", "\"auto\" or \"cuda\" with backend = \"nccl\"",
               toml_string(group.accelerator));
  }
  if (cpu && !group.device_ids.empty()) {
    if (table.find("devices") || !here_accelerator)
      table.fail("devices",
                 "a device count or \"auto\" with accelerator = \"cpu\" (ids name CUDA devices)",
                 "the device ids " + devices_toml(group));
    table.fail("accelerator", "\"auto\" or \"cuda\" with devices = " + devices_toml(group),
               toml_string(group.accelerator));
  }
}

std::string line(std::string_view key, const std::string& value) {
  return std::string(key).append(" = ").append(value).append("\n");
}

}  // namespace

void read_worker_group(const TableReader& table, SiteSpec& group) {
  read_devices(table, group);
  group.accelerator =
      table.choice("accelerator", {"auto", "cpu", "cuda"}).value_or(group.accelerator);
  group.backend = table.choice("backend", {"auto", "gloo", "nccl"}).value_or(group.backend);
  group.nodes = static_cast<int>(table.integer("nodes", kNodesRange).value_or(group.nodes));
  group.master_addr = table.string("master_addr").value_or(group.master_addr);
  group.master_port =
      static_cast<int>(table.integer("master_port", kPortRange).value_or(group.master_port));
  group.max_restarts =
      static_cast<int>(table.integer("max_restarts", kMaxRestartsRange).value_or(group.max_restarts));
  group.progress_timeout_s =
      table.seconds("progress_timeout_s", kTimeoutRange).value_or(group.progress_timeout_s);
  group.rendezvous_timeout_s =
      table.seconds("rendezvous_timeout_s", kTimeoutRange).value_or(group.rendezvous_timeout_s);
  reject_conflicts(table, group);
}

std::string worker_group_toml(const SiteSpec& group) {
  return line("devices", devices_toml(group)) +
         line("accelerator", toml_string(group.accelerator)) +
         line("backend", toml_string(group.backend)) + line("nodes", std::to_string(group.nodes)) +
         line("master_addr", toml_string(group.master_addr)) +
         line("master_port", std::to_string(group.master_port)) +
         line("max_restarts", std::to_string(group.max_restarts)) +
         line("progress_timeout_s", toml_float(group.progress_timeout_s)) +
         line("rendezvous_timeout_s", toml_float(group.rendezvous_timeout_s));
}

}  // namespace flare::jobspec
