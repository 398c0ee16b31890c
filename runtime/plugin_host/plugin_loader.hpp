// Finds and opens plugin libraries (libflare_<name>.so) and checks that each
// speaks this host's ABI major and is of the expected kind.
#pragma once

#include <flare/plugin_abi.h>

#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace flare::host {

// What to load: by `path` when it is set, else by `name` through the search
// folders (see load_plugin).
struct PluginRequest {
  std::string name;
  std::filesystem::path path;
  std::vector<std::filesystem::path> search_path;
  // What the descriptor's version must satisfy ("1.2.0", ">=1.2, <2"); empty: any.
  std::string version{};
  // Set when a site's policy verified the file: the library is hashed through
  // the descriptor it is then loaded through, so the bytes a site checked are
  // the bytes that run, even if the file is swapped meanwhile.
  std::string sha256{};
};

class PluginLoadError : public std::runtime_error {
 public:
  enum class Kind {
    NotFound, NotLoadable, MissingEntry, AbiMismatch, WrongKind, VersionMismatch, HashMismatch
  };
  PluginLoadError(Kind kind, const std::string& message)
      : std::runtime_error(message), kind_(kind) {}
  Kind kind() const noexcept { return kind_; }

 private:
  Kind kind_;
};

// An opened, checked plugin library. Copies share the library, which stays
// mapped until the last copy is gone; TrainerInstance / AggregatorInstance keep
// a copy, so the code behind a live plugin handle is never unmapped.
// The descriptor and API tables are the plugin's statics, valid while mapped.
class LoadedPlugin {
 public:
  const flare_plugin_descriptor& descriptor() const;
  flare_plugin_kind kind() const { return descriptor().kind; }
  // Precondition: kind() matches; throws std::logic_error otherwise. A table
  // from a plugin of an older minor ends early: read a function appended after
  // 1.0 only under FLARE_HAS_FIELD (the loader checked the 1.0 part).
  const flare_trainer_api_v1& trainer_api() const;
  const flare_aggregator_api_v1& aggregator_api() const;
  const std::filesystem::path& path() const;
  // The requested name (the file's stem without "libflare_" when loaded by path).
  const std::string& name() const;

 private:
  struct Library;
  explicit LoadedPlugin(std::shared_ptr<const Library> library);
  friend LoadedPlugin load_plugin(const PluginRequest&, flare_plugin_kind);
  std::shared_ptr<const Library> library_;
};

// Loads a plugin and checks it, throwing PluginLoadError. By name N it opens the
// first libflare_N.so found in: request.search_path, then $FLARE_PLUGIN_PATH
// (colon-separated), then <folder of the running executable>/../plugins.
LoadedPlugin load_plugin(const PluginRequest& request, flare_plugin_kind expected);

// The file a request names: its path, or the first libflare_<name>.so in the
// search folders. Throws PluginLoadError (NotFound).
std::filesystem::path plugin_file(const PluginRequest& request);
// The name a request goes by: its name, else its file's stem without "libflare_".
std::string plugin_name(const PluginRequest& request);

// "trainer" / "aggregator" (for messages).
const char* plugin_kind_name(flare_plugin_kind kind);

// The folders a by-name request searches, in order.
std::vector<std::filesystem::path> plugin_search_folders(const PluginRequest& request);

}  // namespace flare::host
