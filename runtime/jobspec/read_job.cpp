#include "read_job.hpp"

#include <algorithm>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "job_keys.hpp"
#include "table_reader.hpp"
#include "toml_json.hpp"
#include "toml_text.hpp"
#include "worker_group_keys.hpp"
#include "identity/identity.hpp"
#include "policy/version_requirement.hpp"

namespace flare::jobspec {
namespace {

bool is_name(std::string_view text) {
  return !text.empty() && text.front() != '.' &&
         text.find_first_not_of(
             "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
             "0123456789_-.") == std::string_view::npos;
}

int to_int(int64_t value) { return static_cast<int>(value); }  // ranges checked on read

// [clients] names: the sites as the deployment names them (the name each
// site's certificate carries), in order: the order decides each site's data
// shard. Valid as identity accepts a site's name, since it becomes one.
std::optional<std::vector<std::string>> read_site_names(const TableReader& clients) {
  const toml::node* node = clients.find("names");
  if (!node) return std::nullopt;
  const std::string key = clients.key_path("names");
  const auto* array = node->as_array();
  if (!array || array->empty() || array->size() > static_cast<size_t>(kClientCountRange.max))
    clients.fail("names",
                 "an array of 1 to " + std::to_string(kClientCountRange.max) + " site names",
                 array ? std::to_string(array->size()) + " names" : describe(*node));
  std::vector<std::string> names;
  std::unordered_map<std::string, std::size_t> index_of;
  for (std::size_t i = 0; i < array->size(); ++i) {
    const toml::node& item = *array->get(i);
    const std::string item_key = key + "[" + std::to_string(i) + "]";
    const auto name = item.value_exact<std::string>();
    if (!name) clients.fail_at(item, item_key, "a site name (a string)", describe(item));
    if (const std::string problem = identity::name_problem(identity::Role::site, *name);
        !problem.empty())
      clients.fail_at(item, item_key, "a site name (" + problem + ")", describe(item));
    if (const auto [first, added] = index_of.emplace(*name, i); !added)
      clients.fail_at(item, item_key, "a name no other site has",
                      describe(item) + ", already " + key + "[" + std::to_string(first->second) + "]");
    names.push_back(*name);
  }
  return names;
}

// After the worker group: every site starts from it, by name.
void read_clients(const TableReader& top, JobSpec& spec) {
  std::optional<std::vector<std::string>> names;
  if (const auto clients = top.table("clients")) {
    std::vector<std::string_view> known(kClientsOwnKeys.begin(), kClientsOwnKeys.end());
    known.insert(known.end(), kWorkerGroupKeys.begin(), kWorkerGroupKeys.end());
    clients->allow_only(known);
    const auto count = clients->integer("count", kClientCountRange);
    names = read_site_names(*clients);
    if (names && count && *count != static_cast<int64_t>(names->size()))
      clients->fail("count",
                    std::to_string(names->size()) + ", the number of names in " +
                        clients->key_path("names") + " (one site per name)",
                    describe(*clients->find("count")));
    spec.n_clients = names ? static_cast<int>(names->size()) : to_int(count.value_or(spec.n_clients));
    spec.oversubscribe = clients->boolean("oversubscribe").value_or(spec.oversubscribe);
    read_worker_group(*clients, spec.site_defaults);
  }
  for (std::string& name : names ? *names : default_site_names(spec.n_clients)) {
    spec.sites.push_back(spec.site_defaults);
    spec.sites.back().name = std::move(name);
  }
}

void read_sites(const TableReader& top, JobSpec& spec) {
  const auto sites = top.table("sites");
  if (!sites) return;
  const std::string known = "a site of this job (" + site_list(spec) + ")";
  // By name, not by a search per key: an exported job names every site, and
  // up to 100000 searches of 100000 sites took seconds (found by the fuzzer).
  std::unordered_map<std::string_view, SiteSpec*> by_name;
  for (SiteSpec& site : spec.sites) by_name.emplace(site.name, &site);
  for (const auto& [key, value] : sites->node()) {
    const std::string_view name = key.str();
    const auto site = by_name.find(name);
    if (site == by_name.end()) sites->fail(name, known, "unknown site " + toml_key(name));
    const auto overrides = sites->table(name);
    overrides->allow_only(kWorkerGroupKeys);
    read_worker_group(*overrides, *site->second);
  }
}

void read_job_table(const TableReader& top, JobSpec& spec) {
  spec.min_clients = spec.n_clients;
  if (const auto job = top.table("job")) {
    job->allow_only(kJobKeys);
    if (auto name = job->string("name")) {
      if (!is_name(*name))
        job->fail("name", "a name of letters, digits, '.', '_' or '-'", toml_string(*name));
      spec.name = std::move(*name);
    }
    spec.num_rounds = to_int(job->integer("num_rounds", kNumRoundsRange).value_or(spec.num_rounds));
    spec.min_clients = to_int(
        job->integer("min_clients", {1, spec.n_clients}, "clients.count").value_or(spec.min_clients));
    if (const auto n = job->integer("clients_per_round", {1, spec.n_clients}, "clients.count"))
      spec.clients_per_round = to_int(*n);
    spec.client_fraction = job->number("client_fraction", kClientFractionRange).value_or(0);
    if (spec.clients_per_round > 0 && spec.client_fraction > 0)
      job->fail("client_fraction", "one of job.clients_per_round or job.client_fraction", "both");
    if (spec.clients_per_round > 0 && spec.clients_per_round < spec.min_clients)
      job->fail("clients_per_round",
                "at least job.min_clients (" + std::to_string(spec.min_clients) + ")",
                std::to_string(spec.clients_per_round));
    spec.seed = static_cast<uint64_t>(job->integer("seed", kSeedRange).value_or(0));
    if (auto workspace = job->path("workspace")) spec.workspace = std::move(*workspace);
    spec.use_tracking = job->boolean("use_tracking").value_or(spec.use_tracking);
    spec.plugin_path = job->path_list("plugin_path").value_or(spec.plugin_path);
  }
  // Defaults that depend on the name land where flare-run is started.
  if (spec.workspace.empty())
    spec.workspace = resolve_path(std::filesystem::current_path(), "workspace/" + spec.name);
}

// A job names its data: a default folder would only move the error to
// where the trainer looks for it, after the job started.
void read_data(const TableReader& top, JobSpec& spec) {
  constexpr std::string_view expected = "the folder of the job's data";
  const auto data = top.table("data");
  if (!data) top.fail_missing("data.dir", expected);
  data->allow_only(kDataKeys);
  auto dir = data->path("dir");
  if (!dir) data->fail("dir", expected, "none");
  spec.data_dir = std::move(*dir);
  spec.data_split = data->choice("split", {"iid", "dirichlet"}).value_or(spec.data_split);
  spec.data_alpha = data->number("alpha", kDirichletAlphaRange).value_or(spec.data_alpha);
}

void read_plugin(const TableReader& top, std::string_view key, PluginRef& plugin) {
  const auto table = top.table(key);
  if (!table) return;  // keeps the default plugin (fedavg); read_job requires a trainer
  table->allow_only(kPluginKeys);
  const auto name = table->string("plugin");
  const auto path = table->path("path");
  // A [trainer] table without either is a mistake, not a request for the
  // default: its config was written for some particular plugin.
  if (name.has_value() == path.has_value())
    top.fail(key, "exactly one of " + table->key_path("plugin") + " or " + table->key_path("path"),
             name ? "both" : "neither");
  if (name && !is_name(*name))
    table->fail("plugin", "a plugin name of letters, digits, '.', '_' or '-' (a file goes in path)",
                toml_string(*name));
  plugin.name = name.value_or("");
  plugin.path = path.value_or("");
  plugin.version = table->string("version").value_or("");
  if (!plugin.version.empty()) {
    try {
      policy::VersionRequirement::parse(plugin.version);
    } catch (const std::invalid_argument& e) {
      table->fail("version", e.what(), describe(*table->find("version")));
    }
  }
  plugin.config = nlohmann::json::object();
  if (const toml::node* config = table->find("config")) {
    if (!config->is_table()) table->fail("config", "a table", describe(*config));
    plugin.config = to_json(*config);
  }
}

void read_server(const TableReader& top, JobSpec& spec) {
  const auto server = top.table("server");
  if (!server) return;
  server->allow_only(kServerKeys);
  spec.key_metric = server->string("key_metric").value_or(spec.key_metric);
  spec.key_metric_mode =
      server->choice("key_metric_mode", {"auto", "max", "min"}).value_or(spec.key_metric_mode);
  spec.round_timeout_s = server->seconds("round_timeout_s", kTimeoutRange).value_or(spec.round_timeout_s);
  spec.worker_start_timeout_s =
      server->seconds("worker_start_timeout_s", kTimeoutRange).value_or(spec.worker_start_timeout_s);
  // Sites ping the server every half of it, and at most once a second.
  spec.answer_timeout_s =
      server->seconds("answer_timeout_s", kAnswerTimeoutRange).value_or(spec.answer_timeout_s);
  spec.heartbeat_interval_s = server->seconds("heartbeat_interval_s", kHeartbeatIntervalRange)
                                 .value_or(spec.heartbeat_interval_s);
  spec.heartbeat_timeout_s =
      server->seconds("heartbeat_timeout_s", kTimeoutRange).value_or(spec.heartbeat_timeout_s);
  // Fewer beats than three in the grace period: one late packet is a death.
  if (spec.heartbeat_timeout_s < 3 * spec.heartbeat_interval_s)
    server->fail(server->find("heartbeat_timeout_s") ? "heartbeat_timeout_s" : "heartbeat_interval_s",
                 "server.heartbeat_timeout_s at least 3 x server.heartbeat_interval_s (" +
                     toml_float(spec.heartbeat_interval_s) + " s)",
                 toml_float(spec.heartbeat_timeout_s) + " s");
  spec.reconnect_timeout_s =
      server->seconds("reconnect_timeout_s", kTimeoutRange).value_or(spec.reconnect_timeout_s);
  spec.keep_checkpoints =
      server->integer("keep_checkpoints", kKeepCheckpointsRange).value_or(spec.keep_checkpoints);
  spec.save_every = server->integer("save_every", kSaveEveryRange).value_or(spec.save_every);
  spec.keep_last = server->integer("keep_last", kKeepLastRange).value_or(spec.keep_last);
  spec.wire_dtype = server->choice("wire_dtype", {"float32", "bfloat16", "float16", "int8"})
                        .value_or(spec.wire_dtype);
  spec.server_host = server->string("host").value_or(spec.server_host);
  spec.server_port = to_int(server->integer("port", kPortRange).value_or(spec.server_port));
}

}  // namespace

std::vector<std::string> default_site_names(int count) {
  std::vector<std::string> names;
  for (int i = 1; i <= count; ++i) names.push_back("site-" + std::to_string(i));
  return names;
}

bool has_default_site_names(const JobSpec& spec) {
  for (std::size_t i = 0; i < spec.sites.size(); ++i)
    if (spec.sites[i].name != "site-" + std::to_string(i + 1)) return false;
  return true;
}

std::string site_list(const JobSpec& spec) {
  if (has_default_site_names(spec))
    return "site-1 to site-" + std::to_string(spec.n_clients);
  constexpr std::size_t kShown = 5;  // of up to 100000
  std::string out;
  for (std::size_t i = 0; i < std::min(kShown, spec.sites.size()); ++i)
    out.append(i ? ", " : "").append(spec.sites[i].name);
  if (spec.sites.size() > kShown)
    out += ", ... (" + std::to_string(spec.sites.size()) + " in all)";
  return out;
}

std::vector<std::string> accepted_keys() {
  std::vector<std::string> keys;
  const auto add = [&keys](std::string_view table, const auto& names) {
    for (const std::string_view name : names) keys.push_back(std::string(table) + "." + std::string(name));
  };
  add("job", kJobKeys);
  add("clients", kClientsOwnKeys);
  add("clients", kWorkerGroupKeys);
  add("sites.<name>", kWorkerGroupKeys);
  add("data", kDataKeys);
  add("trainer", kPluginKeys);
  add("aggregator", kPluginKeys);
  add("server", kServerKeys);
  return keys;
}

JobSpec read_job(const toml::table& root, const Document& doc) {
  const TableReader top(root, "", doc);
  top.allow_only(kTopTables);
  JobSpec spec;
  spec.source = resolve_path(std::filesystem::current_path(), doc.file());
  read_clients(top, spec);  // first: min_clients and sites are checked against it
  read_job_table(top, spec);
  read_sites(top, spec);
  read_plugin(top, "trainer", spec.trainer);
  read_plugin(top, "aggregator", spec.aggregator);
  read_server(top, spec);
  // Last, so a mistake in the keys a file has is named before one it lacks.
  // An empty file ran a default cifar10 job; a job names what it trains and on what.
  if (!top.find("trainer"))
    top.fail_missing("trainer",
                     "a [trainer] table naming the job's trainer (plugin = \"<name>\" or path = "
                     "\"<file.so>\")");
  read_data(top, spec);
  return spec;
}

}  // namespace flare::jobspec
