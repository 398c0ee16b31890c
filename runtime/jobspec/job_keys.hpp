// The keys each table of a job file may hold: read_job allows only these, and
// accepted_keys() lists them for the documentation's test, so the parser and
// docs/job-spec.md cannot drift apart. Internal to flare_jobspec.
#pragma once

#include <array>
#include <string_view>

namespace flare::jobspec {

inline constexpr std::array<std::string_view, 7> kTopTables = {
    "job", "clients", "sites", "data", "trainer", "aggregator", "server"};
inline constexpr std::array<std::string_view, 9> kJobKeys = {
    "name",      "num_rounds",   "min_clients", "clients_per_round", "client_fraction",
    "seed",      "workspace",    "use_tracking", "plugin_path"};
// [clients] holds these and every worker-group key (worker_group_keys.hpp).
// `names`: the sites as the deployment names them; else site-1 .. site-<count>.
inline constexpr std::array<std::string_view, 3> kClientsOwnKeys = {"count", "names",
                                                                    "oversubscribe"};
inline constexpr std::array<std::string_view, 3> kDataKeys = {"dir", "split", "alpha"};
// [trainer] and [aggregator]; `config` is a table of the plugin's own keys.
// `version` is a requirement on the plugin's version ("1.2.0", ">=1.2, <2").
inline constexpr std::array<std::string_view, 4> kPluginKeys = {"plugin", "path", "version",
                                                                "config"};
inline constexpr std::array<std::string_view, 14> kServerKeys = {
    "key_metric",          "key_metric_mode",      "round_timeout_s", "worker_start_timeout_s",
    "answer_timeout_s",    "heartbeat_interval_s", "heartbeat_timeout_s", "reconnect_timeout_s",
    "save_every",          "keep_last",            "keep_checkpoints", "wire_dtype",
    "host",                "port"};

}  // namespace flare::jobspec
