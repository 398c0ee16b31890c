// Every call the host makes into a plugin goes through a PluginCall: while it
// lives, a crash is reported as this plugin's crash in this call
// (crash_report.hpp); an error the plugin returns, and anything wrong in what
// it hands back (result_checks.hpp), becomes a PluginCallError naming the
// plugin, its file and the call. One mechanism for every call, so no caller
// checks plugin results by hand.
#pragma once

#include <flare/plugin_abi.h>

#include <stdexcept>
#include <string>

#include "plugin_host/crash_report.hpp"
#include "plugin_host/plugin_loader.hpp"

namespace flare::host {

// A plugin call failed: the plugin returned an error, or handed back a result
// the host refused. what(): plugin, file, call and what was wrong.
class PluginCallError : public std::runtime_error {
 public:
  // The plugin returned an error with `code` and its own message.
  PluginCallError(const LoadedPlugin& plugin, const std::string& function,
                  flare_error_code code, const std::string& plugin_message);

  // FLARE_ERROR_INTERNAL when the host refused the result.
  flare_error_code code() const noexcept { return code_; }
  // The plugin's message, or what was wrong with its result.
  const std::string& plugin_message() const noexcept { return plugin_message_; }
  const std::string& plugin_name() const noexcept { return plugin_name_; }
  const std::string& plugin_file() const noexcept { return plugin_file_; }
  const std::string& function() const noexcept { return function_; }
  // The plugin said the call succeeded, but the host refused what it handed back.
  bool refused_result() const noexcept { return refused_result_; }

 private:
  friend class PluginCall;
  PluginCallError(const LoadedPlugin& plugin, const std::string& function,
                  const std::string& what_was_wrong);

  flare_error_code code_;
  std::string plugin_message_;
  std::string plugin_name_;
  std::string plugin_file_;
  std::string function_;
  bool refused_result_ = false;
};

class PluginCall {
 public:
  // `function` is a string literal (the ABI's name of the call).
  PluginCall(const LoadedPlugin& plugin, const char* function);

  // After the plugin returned: throws its error as a PluginCallError (the
  // error is released here). From now on a crash is the host reading an
  // invalid pointer the plugin handed back.
  void check(flare_error* error);
  // A result breaking the ABI's promises.
  [[noreturn]] void refuse(const std::string& what_was_wrong) const;

 private:
  const LoadedPlugin& plugin_;
  const char* function_;
  PluginCallMarker marker_;
};

}  // namespace flare::host
