#include "plugin_host/plugin_call.hpp"

#include "plugin_host/host_services.hpp"

namespace flare::host {

namespace {

std::string plugin_label(const LoadedPlugin& plugin) {
  return "plugin '" + plugin.name() + "' (" + plugin.path().string() + ")";
}

}  // namespace

PluginCallError::PluginCallError(const LoadedPlugin& plugin, const std::string& function,
                                 flare_error_code code, const std::string& plugin_message)
    : std::runtime_error(plugin_label(plugin) + ": " + function + " failed with " +
                         error_code_name(code) + ": " + plugin_message),
      code_(code),
      plugin_message_(plugin_message),
      plugin_name_(plugin.name()),
      plugin_file_(plugin.path().string()),
      function_(function) {}

PluginCallError::PluginCallError(const LoadedPlugin& plugin, const std::string& function,
                                 const std::string& what_was_wrong)
    : std::runtime_error(plugin_label(plugin) + ": " + function +
                         " handed back an invalid result: " + what_was_wrong),
      code_(FLARE_ERROR_INTERNAL),
      plugin_message_(what_was_wrong),
      plugin_name_(plugin.name()),
      plugin_file_(plugin.path().string()),
      function_(function),
      refused_result_(true) {}

PluginCall::PluginCall(const LoadedPlugin& plugin, const char* function)
    : plugin_(plugin),
      function_(function),
      marker_({plugin.name().c_str(), plugin.path().c_str(), function}) {}

void PluginCall::check(flare_error* error) {
  marker_.reading_result();
  if (!error) return;
  const ErrorPtr owned(error);
  throw PluginCallError(plugin_, function_, error_code(error), std::string(error_message(error)));
}

void PluginCall::refuse(const std::string& what_was_wrong) const {
  throw PluginCallError(plugin_, function_, what_was_wrong);
}

}  // namespace flare::host
