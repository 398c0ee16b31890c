#include "plugin_host/config_validation.hpp"

#include "plugin_host/plugin_call.hpp"

namespace flare::host {

bool validate_trainer_config(const LoadedPlugin& plugin, const std::string& config_json,
                             const flare_worker_info& worker, const HostServices& host) {
  const flare_trainer_api_v1& api = plugin.trainer_api();
  if (!FLARE_HAS_FIELD(&api, flare_trainer_api_v1, validate_config) || !api.validate_config)
    return false;
  flare_worker_info info = worker;
  info.struct_size = sizeof(info);
  PluginCall call(plugin, "validate_config");  // a crash in it is reported as the plugin's
  call.check(api.validate_config(config_json.c_str(), &info, host.table()));
  return true;
}

bool validate_aggregator_config(const LoadedPlugin& plugin, const std::string& config_json,
                                const HostServices& host) {
  const flare_aggregator_api_v1& api = plugin.aggregator_api();
  if (!FLARE_HAS_FIELD(&api, flare_aggregator_api_v1, validate_config) || !api.validate_config)
    return false;
  PluginCall call(plugin, "validate_config");
  call.check(api.validate_config(config_json.c_str(), host.table()));
  return true;
}

}  // namespace flare::host
