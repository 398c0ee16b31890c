// A plugin's check of its config before anything is built (ABI 1.2's
// validate_config), so a bad config is refused before the job starts. A
// plugin of an older minor, or one that leaves the call NULL, offers no
// check: its create() is then the first to see the config.
#pragma once

#include <flare/plugin_abi.h>

#include <string>

#include "plugin_host/host_services.hpp"
#include "plugin_host/plugin_loader.hpp"

namespace flare::host {

// Runs the trainer's validate_config on `config_json`, with `worker` as the
// rank it describes (struct_size is set here); false when the plugin offers
// none. Throws PluginCallError (function "validate_config"): the plugin, the
// error code (INVALID_ARGUMENT: an option; NOT_FOUND / IO: the data) and the
// plugin's message.
bool validate_trainer_config(const LoadedPlugin& plugin, const std::string& config_json,
                             const flare_worker_info& worker, const HostServices& host);

// The same for an aggregator.
bool validate_aggregator_config(const LoadedPlugin& plugin, const std::string& config_json,
                                const HostServices& host);

}  // namespace flare::host
