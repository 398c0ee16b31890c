#include <cerrno>
#include <cstdio>
#include <limits>
#include <system_error>

#include "job_spec.hpp"
#include "toml_text.hpp"
#include "worker_group_keys.hpp"

namespace flare::jobspec {
namespace {

std::string line(std::string_view key, std::string_view value) {
  return std::string(key).append(" = ").append(value).append("\n");
}

std::string path_value(const std::filesystem::path& path) { return toml_string(path.string()); }

[[noreturn]] void write_failed(const std::filesystem::path& file, int error) {
  throw JobWriteError(file.string() + ": cannot write the job file: " +
                      std::generic_category().message(error));
}

std::string plugin_section(std::string_view key, const PluginRef& plugin) {
  std::string out = "\n[" + std::string(key) + "]\n";
  out += plugin.path.empty() ? line("plugin", toml_string(plugin.name))
                             : line("path", path_value(plugin.path));
  if (!plugin.version.empty()) out += line("version", toml_string(plugin.version));
  out += "\n[" + std::string(key) + ".config]\n";
  for (const auto& [name, value] : plugin.config.items())
    out += line(toml_key(name), toml_value(value));
  return out;
}

}  // namespace

std::string to_toml(const JobSpec& spec) {
  std::string out = "# Resolved job spec: every default filled in, every path absolute.\n";
  out += "# Read from " + toml_string(spec.source.string()) + "\n\n[job]\n";
  out += line("name", toml_string(spec.name));
  out += line("num_rounds", std::to_string(spec.num_rounds));
  out += line("min_clients", std::to_string(spec.min_clients));
  if (spec.client_fraction > 0)
    out += line("client_fraction", toml_float(spec.client_fraction));
  else if (spec.clients_per_round > 0)
    out += line("clients_per_round", std::to_string(spec.clients_per_round));
  if (spec.seed > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
    throw JobSpecError("job.seed: expected an integer TOML can hold (<= 2^63-1), found " +
                       std::to_string(spec.seed));
  out += line("seed", std::to_string(spec.seed));
  out += line("workspace", path_value(spec.workspace));
  out += line("use_tracking", spec.use_tracking ? "true" : "false");
  std::string folders = "[";
  for (const auto& folder : spec.plugin_path)
    folders.append(folders.size() > 1 ? ", " : "").append(path_value(folder));
  out += line("plugin_path", folders + "]");

  out += "\n[clients]\n";
  out += line("count", std::to_string(spec.n_clients));
  if (!has_default_site_names(spec)) {
    std::string names = "[";
    for (const SiteSpec& site : spec.sites)
      names.append(names.size() > 1 ? ", " : "").append(toml_string(site.name));
    out += line("names", names + "]");
  }
  out += line("oversubscribe", spec.oversubscribe ? "true" : "false");
  out += worker_group_toml(spec.site_defaults);
  for (const SiteSpec& site : spec.sites)
    out += "\n[sites." + toml_key(site.name) + "]\n" + worker_group_toml(site);

  out += "\n[data]\n" + line("dir", path_value(spec.data_dir));
  out += line("split", toml_string(spec.data_split));
  out += line("alpha", toml_float(spec.data_alpha));
  out += plugin_section("trainer", spec.trainer);
  out += plugin_section("aggregator", spec.aggregator);

  out += "\n[server]\n";
  out += line("key_metric", toml_string(spec.key_metric));
  out += line("key_metric_mode", toml_string(spec.key_metric_mode));
  out += line("round_timeout_s", toml_float(spec.round_timeout_s));
  out += line("worker_start_timeout_s", toml_float(spec.worker_start_timeout_s));
  out += line("answer_timeout_s", toml_float(spec.answer_timeout_s));
  out += line("heartbeat_interval_s", toml_float(spec.heartbeat_interval_s));
  out += line("heartbeat_timeout_s", toml_float(spec.heartbeat_timeout_s));
  out += line("reconnect_timeout_s", toml_float(spec.reconnect_timeout_s));
  out += line("keep_checkpoints", std::to_string(spec.keep_checkpoints));
  out += line("save_every", std::to_string(spec.save_every));
  out += line("keep_last", std::to_string(spec.keep_last));
  out += line("wire_dtype", toml_string(spec.wire_dtype));
  out += line("host", toml_string(spec.server_host));
  out += line("port", std::to_string(spec.server_port));
  return out;
}

void export_job(const JobSpec& spec, const std::filesystem::path& dir) {
  const std::filesystem::path file = dir / "job.toml";
  const std::string text = to_toml(spec);
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error)
    throw JobWriteError(dir.string() + ": cannot create the folder to export the job into: " +
                        error.message());
  // Through stdio for errno: a full disk says so (a stream only says "failed").
  std::FILE* out = std::fopen(file.c_str(), "wb");
  if (!out) write_failed(file, errno);
  const bool written =
      std::fwrite(text.data(), 1, text.size(), out) == text.size() && std::fflush(out) == 0;
  const int write_error = errno;
  const bool closed = std::fclose(out) == 0;
  if (!written) write_failed(file, write_error);
  if (!closed) write_failed(file, errno);
}

}  // namespace flare::jobspec
