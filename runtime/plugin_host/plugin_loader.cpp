#include "plugin_host/plugin_loader.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <sstream>
#include <system_error>
#include <utility>

#include <boost/dll/runtime_symbol_info.hpp>
#include <boost/dll/shared_library.hpp>
#include <spdlog/spdlog.h>

#include "policy/file_digest.hpp"
#include "policy/version_requirement.hpp"

namespace flare::host {
namespace fs = std::filesystem;
using Kind = PluginLoadError::Kind;

struct LoadedPlugin::Library {
  boost::dll::shared_library library;
  const flare_plugin_descriptor* descriptor = nullptr;
  fs::path path;
  std::string name;
};

LoadedPlugin::LoadedPlugin(std::shared_ptr<const Library> library)
    : library_(std::move(library)) {}

const flare_plugin_descriptor& LoadedPlugin::descriptor() const { return *library_->descriptor; }
const fs::path& LoadedPlugin::path() const { return library_->path; }
const std::string& LoadedPlugin::name() const { return library_->name; }

const flare_trainer_api_v1& LoadedPlugin::trainer_api() const {
  if (kind() != FLARE_PLUGIN_TRAINER)
    throw std::logic_error("plugin '" + name() + "' is not a trainer");
  return *static_cast<const flare_trainer_api_v1*>(descriptor().api);
}

const flare_aggregator_api_v1& LoadedPlugin::aggregator_api() const {
  if (kind() != FLARE_PLUGIN_AGGREGATOR)
    throw std::logic_error("plugin '" + name() + "' is not an aggregator");
  return *static_cast<const flare_aggregator_api_v1*>(descriptor().api);
}

const char* plugin_kind_name(flare_plugin_kind kind) {
  switch (kind) {
    case FLARE_PLUGIN_TRAINER: return "trainer";
    case FLARE_PLUGIN_AGGREGATOR: return "aggregator";
  }
  return "unknown-kind";
}

namespace {

std::shared_ptr<spdlog::logger> logger() {
  auto named = spdlog::get("plugin_host");
  return named ? named : spdlog::default_logger();
}

std::string library_file_name(const std::string& name) { return "libflare_" + name + ".so"; }

std::string name_from_path(const fs::path& path) {
  std::string stem = path.stem().string();
  const std::string prefix = "libflare_";
  return stem.rfind(prefix, 0) == 0 ? stem.substr(prefix.size()) : stem;
}

// Boost.DLL wraps dlerror's text; keep only that part, it names the real cause
// (without the path dlerror repeats: our message already names it).
std::string loader_message(const std::system_error& e, const fs::path& path) {
  const std::string what = e.what();
  const std::string marker = "(dlerror system message: ";
  const auto start = what.find(marker);
  if (start == std::string::npos) return what;
  const auto end = what.rfind(')');
  const auto from = start + marker.size();
  std::string text =
      what.substr(from, end == std::string::npos || end < from ? std::string::npos : end - from);
  const std::string prefix = path.string() + ": ";
  if (text.rfind(prefix, 0) == 0) text.erase(0, prefix.size());
  return text;
}

class Checker {
 public:
  Checker(std::string name, fs::path path) : name_(std::move(name)), path_(std::move(path)) {}

  [[noreturn]] void fail(Kind kind, const std::string& what) const {
    throw PluginLoadError(kind, "plugin '" + name_ + "' (" + path_.string() + "): " + what);
  }

  void check_descriptor(const flare_plugin_descriptor* d, flare_plugin_kind expected) const {
    if (!d) fail(Kind::AbiMismatch, "its entry returned no descriptor");
    // The version fields have the same place in every major: read them first.
    if (!FLARE_HAS_FIELD(d, flare_plugin_descriptor, abi_minor))
      fail(Kind::AbiMismatch,
           too_small("descriptor", d->struct_size, FLARE_PLUGIN_DESCRIPTOR_SIZE_1_0));
    if (d->abi_major != FLARE_ABI_VERSION_MAJOR) {
      std::ostringstream m;
      m << "was built for ABI " << d->abi_major << "." << d->abi_minor
        << ", this host speaks ABI " << FLARE_ABI_VERSION_MAJOR << "." << FLARE_ABI_VERSION_MINOR;
      fail(Kind::AbiMismatch, m.str());
    }
    if (d->struct_size < FLARE_PLUGIN_DESCRIPTOR_SIZE_1_0)
      fail(Kind::AbiMismatch,
           too_small("descriptor", d->struct_size, FLARE_PLUGIN_DESCRIPTOR_SIZE_1_0));
    if (d->kind != expected)
      fail(Kind::WrongKind, std::string("is ") + article(plugin_kind_name(d->kind)) + " plugin, expected " +
                                article(plugin_kind_name(expected)));
    if (!d->api) fail(Kind::AbiMismatch, "its descriptor has no function table");
    if (expected == FLARE_PLUGIN_TRAINER)
      check_trainer(*static_cast<const flare_trainer_api_v1*>(d->api));
    else
      check_aggregator(*static_cast<const flare_aggregator_api_v1*>(d->api));
  }

 private:
  static std::string article(const std::string& noun) {
    const bool vowel = !noun.empty() && std::string("aeiou").find(noun[0]) != std::string::npos;
    return (vowel ? "an " : "a ") + noun;
  }

  // `need` is the struct's 1.0 size: a plugin of any 1.x minor has at least that.
  static std::string too_small(const char* what, size_t got, size_t need) {
    return std::string(what) + " struct_size is " + std::to_string(got) + " bytes, ABI " +
           std::to_string(FLARE_ABI_VERSION_MAJOR) + ".0 needs at least " + std::to_string(need);
  }

  void require(const void* fn, const char* field) const {
    if (!fn) fail(Kind::AbiMismatch, std::string("its function table has no '") + field + "'");
  }

  // Only the 1.0 functions are required: one appended later is read under
  // FLARE_HAS_FIELD where it is called, and may be absent or NULL.
  void check_trainer(const flare_trainer_api_v1& t) const {
    if (t.struct_size < FLARE_TRAINER_API_SIZE_1_0)
      fail(Kind::AbiMismatch,
           too_small("trainer table", t.struct_size, FLARE_TRAINER_API_SIZE_1_0));
    require(reinterpret_cast<const void*>(t.create), "create");
    require(reinterpret_cast<const void*>(t.destroy), "destroy");
    require(reinterpret_cast<const void*>(t.get_weights), "get_weights");
    require(reinterpret_cast<const void*>(t.set_weights), "set_weights");
    require(reinterpret_cast<const void*>(t.evaluate), "evaluate");
    require(reinterpret_cast<const void*>(t.train), "train");
  }

  void check_aggregator(const flare_aggregator_api_v1& a) const {
    if (a.struct_size < FLARE_AGGREGATOR_API_SIZE_1_0)
      fail(Kind::AbiMismatch,
           too_small("aggregator table", a.struct_size, FLARE_AGGREGATOR_API_SIZE_1_0));
    require(reinterpret_cast<const void*>(a.create), "create");
    require(reinterpret_cast<const void*>(a.destroy), "destroy");
    require(reinterpret_cast<const void*>(a.begin_round), "begin_round");
    require(reinterpret_cast<const void*>(a.accept), "accept");
    require(reinterpret_cast<const void*>(a.finalize), "finalize");
    // ABI 1.3: begin_update declares streamed updates, and then needs all five.
    if (FLARE_HAS_FIELD(&a, flare_aggregator_api_v1, abort_update) && a.begin_update) {
      require(reinterpret_cast<const void*>(a.accept_chunk), "accept_chunk");
      require(reinterpret_cast<const void*>(a.retract_chunk), "retract_chunk");
      require(reinterpret_cast<const void*>(a.end_update), "end_update");
      require(reinterpret_cast<const void*>(a.abort_update), "abort_update");
    }
    // ABI 1.4: state is both functions or neither; properties it knows.
    if (FLARE_HAS_FIELD(&a, flare_aggregator_api_v1, set_state)) {
      if (!a.get_state != !a.set_state)
        fail(Kind::AbiMismatch, std::string("its function table has '") +
                                    (a.get_state ? "get_state" : "set_state") + "' without '" +
                                    (a.get_state ? "set_state" : "get_state") + "'");
      if (a.properties & ~FLARE_AGGREGATOR_KEEPS_UPDATES)
        fail(Kind::AbiMismatch, "its properties have bits this host does not know (0x" +
                                    hex(a.properties & ~FLARE_AGGREGATOR_KEEPS_UPDATES) + ")");
      if ((a.properties & FLARE_AGGREGATOR_KEEPS_UPDATES) && a.begin_update)
        fail(Kind::AbiMismatch,
             "it keeps updates (FLARE_AGGREGATOR_KEEPS_UPDATES) and folds streamed chunks "
             "(begin_update): an aggregator takes updates one way");
    }
  }

  static std::string hex(uint64_t v) {
    std::ostringstream m;
    m << std::hex << v;
    return m.str();
  }

  std::string name_;
  fs::path path_;
};

fs::path find_by_name(const PluginRequest& request) {
  if (request.name.empty() || request.name.find('/') != std::string::npos)
    throw PluginLoadError(Kind::NotFound,
                          "plugin name '" + request.name + "' is not a valid plugin name");
  const auto folders = plugin_search_folders(request);
  const std::string file = library_file_name(request.name);
  for (const auto& folder : folders) {
    std::error_code ec;
    if (fs::is_regular_file(folder / file, ec)) return folder / file;
  }
  std::string searched;
  for (const auto& folder : folders) searched += "\n  " + folder.string();
  throw PluginLoadError(Kind::NotFound, "plugin '" + request.name + "': " + file +
                                            " not found; searched:" + searched);
}

}  // namespace

std::vector<fs::path> plugin_search_folders(const PluginRequest& request) {
  std::vector<fs::path> folders = request.search_path;
  if (const char* env = std::getenv("FLARE_PLUGIN_PATH")) {
    std::stringstream list(env);
    for (std::string entry; std::getline(list, entry, ':');)
      if (!entry.empty()) folders.emplace_back(entry);
  }
  std::error_code ec;
  const fs::path program = boost::dll::program_location(ec);
  if (!ec) folders.push_back((program.parent_path() / ".." / "plugins").lexically_normal());
  return folders;
}

std::string plugin_name(const PluginRequest& request) {
  return !request.name.empty() ? request.name : name_from_path(request.path);
}

fs::path plugin_file(const PluginRequest& request) {
  if (request.path.empty()) return find_by_name(request);
  std::error_code ec;
  if (!fs::exists(request.path, ec))
    throw PluginLoadError(Kind::NotFound, "plugin '" + plugin_name(request) + "': file " +
                                              request.path.string() + " does not exist");
  return request.path;
}

namespace {

// Closes the descriptor a verified library was hashed and loaded through.
struct FileDescriptor {
  int fd = -1;
  ~FileDescriptor() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

LoadedPlugin load_plugin(const PluginRequest& request, flare_plugin_kind expected) {
  auto library = std::make_shared<LoadedPlugin::Library>();
  library->path = plugin_file(request);
  library->name = plugin_name(request);
  const Checker checker(library->name, library->path);

  // A verified library opens through one descriptor, hashed and then loaded
  // from /proc/self/fd: a file swapped after the check is never the one run.
  FileDescriptor verified;
  fs::path load_from = library->path;
  if (!request.sha256.empty()) {
    verified.fd = ::open(library->path.c_str(), O_RDONLY | O_CLOEXEC);
    if (verified.fd < 0) checker.fail(Kind::NotFound, "cannot open it to check its SHA-256");
    std::string digest;
    try {
      digest = policy::sha256_of_fd(verified.fd, library->path);
    } catch (const std::exception& e) {
      checker.fail(Kind::HashMismatch, e.what());
    }
    if (digest != request.sha256)
      checker.fail(Kind::HashMismatch, "its SHA-256 is " + digest + ", but the site verified " +
                                           request.sha256 + ": the file changed since");
    load_from = "/proc/self/fd/" + std::to_string(verified.fd);
  }
  try {
    // rtld_now: an unresolved symbol fails here, with the loader's message,
    // rather than later in the middle of a round.
    library->library.load(load_from, boost::dll::load_mode::rtld_now |
                                             boost::dll::load_mode::rtld_local);
  } catch (const std::system_error& e) {
    checker.fail(Kind::NotLoadable, "not a loadable library: " + loader_message(e, library->path));
  }
  if (!library->library.has(FLARE_PLUGIN_ENTRY_SYMBOL))
    checker.fail(Kind::MissingEntry, std::string("exports no entry symbol '") +
                                         FLARE_PLUGIN_ENTRY_SYMBOL + "'");
  auto& entry = library->library.get<const flare_plugin_descriptor*(uint32_t)>(
      FLARE_PLUGIN_ENTRY_SYMBOL);
  library->descriptor = entry(FLARE_ABI_VERSION_MAJOR);
  checker.check_descriptor(library->descriptor, expected);
  if (!request.version.empty()) {
    const char* version = library->descriptor->version;
    if (!policy::VersionRequirement::parse(request.version).allows(version ? version : ""))
      checker.fail(Kind::VersionMismatch, std::string("is version ") +
                                              (version ? version : "(none stated)") +
                                              ", the job asks for " + request.version);
  }

  const auto& d = *library->descriptor;
  logger()->debug("loaded {} plugin '{}' {} (ABI {}.{}) from {}", plugin_kind_name(d.kind),
                  library->name, d.version ? d.version : "?", d.abi_major, d.abi_minor,
                  library->path.string());
  return LoadedPlugin(std::move(library));
}

}  // namespace flare::host
