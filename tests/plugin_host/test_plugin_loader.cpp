#include "plugin_host/plugin_loader.hpp"
#include "policy/file_digest.hpp"

#include <cstddef>
#include <cstdlib>
#include <optional>
#include <string>

#include <doctest/doctest.h>

using flare::host::load_plugin;
using flare::host::PluginLoadError;
using flare::host::PluginRequest;
using Kind = PluginLoadError::Kind;

namespace {

const std::filesystem::path fixtures = FLARE_FIXTURE_DIR;

PluginRequest in_fixtures(const std::string& name) { return {name, {}, {fixtures}}; }

// Loads expecting failure; returns the error so a test can inspect it.
PluginLoadError load_error(const PluginRequest& request,
                           flare_plugin_kind expected = FLARE_PLUGIN_TRAINER) {
  try {
    load_plugin(request, expected);
  } catch (const PluginLoadError& e) {
    return e;
  }
  FAIL("expected PluginLoadError loading '" << request.name << "', but it loaded");
  return PluginLoadError(Kind::NotFound, "unreachable");
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("loads a trainer by name from a search folder") {
  const auto plugin = load_plugin(in_fixtures("counter"), FLARE_PLUGIN_TRAINER);
  CHECK(plugin.name() == "counter");
  CHECK(plugin.path() == fixtures / "libflare_counter.so");
  CHECK(plugin.kind() == FLARE_PLUGIN_TRAINER);
  CHECK(std::string(plugin.descriptor().name) == "counter");
  CHECK(plugin.descriptor().abi_major == FLARE_ABI_VERSION_MAJOR);
  CHECK(plugin.trainer_api().struct_size >= sizeof(flare_trainer_api_v1));
  CHECK_THROWS_AS(plugin.aggregator_api(), std::logic_error);
}

TEST_CASE("loads a plugin by path and names it after the file") {
  const auto plugin = load_plugin({"", fixtures / "libflare_counter.so", {}}, FLARE_PLUGIN_TRAINER);
  CHECK(plugin.name() == "counter");
}

TEST_CASE("finds a plugin through FLARE_PLUGIN_PATH") {
  const std::string list = "/nonexistent/flare:" + fixtures.string();
  ::setenv("FLARE_PLUGIN_PATH", list.c_str(), 1);
  const auto plugin = load_plugin({"counter", {}, {}}, FLARE_PLUGIN_TRAINER);
  ::unsetenv("FLARE_PLUGIN_PATH");
  CHECK(plugin.path() == fixtures / "libflare_counter.so");
}

TEST_CASE("a loaded plugin stays usable after the copy it came from is gone") {
  std::optional<flare::host::LoadedPlugin> copy;
  {
    const auto plugin = load_plugin(in_fixtures("counter"), FLARE_PLUGIN_TRAINER);
    copy = plugin;
  }
  CHECK(std::string(copy->descriptor().name) == "counter");
}

TEST_CASE("reports a missing plugin with every folder it searched") {
  ::setenv("FLARE_PLUGIN_PATH", "/nonexistent/from-env", 1);
  const auto e = load_error({"no_such_plugin", {}, {"/nonexistent/from-request"}});
  ::unsetenv("FLARE_PLUGIN_PATH");
  CHECK(e.kind() == Kind::NotFound);
  const std::string m = e.what();
  CHECK(contains(m, "'no_such_plugin'"));
  CHECK(contains(m, "libflare_no_such_plugin.so"));
  CHECK(contains(m, "/nonexistent/from-request"));
  CHECK(contains(m, "/nonexistent/from-env"));
  CHECK(contains(m, "plugins"));  // the default folder beside the executable
}

TEST_CASE("reports a missing plugin file given by path") {
  const auto e = load_error({"", fixtures / "libflare_absent.so", {}});
  CHECK(e.kind() == Kind::NotFound);
  CHECK(contains(e.what(), (fixtures / "libflare_absent.so").string()));
}

TEST_CASE("refuses a file that is not a library, with the loader's own message") {
  const auto e = load_error(in_fixtures("garbage"));
  CHECK(e.kind() == Kind::NotLoadable);
  const std::string m = e.what();
  CHECK(contains(m, "'garbage'"));
  CHECK(contains(m, "libflare_garbage.so"));
  // glibc's dlerror text for a non-ELF file.
  CHECK((contains(m, "invalid ELF header") || contains(m, "file too short")));
}

TEST_CASE("refuses a library with an unresolved symbol when it is loaded, not later") {
  const auto e = load_error(in_fixtures("unresolved"));
  CHECK(e.kind() == Kind::NotLoadable);
  CHECK(contains(e.what(), "flare_fixture_missing_function"));
}

TEST_CASE("refuses a library without the entry symbol") {
  const auto e = load_error(in_fixtures("no_entry"));
  CHECK(e.kind() == Kind::MissingEntry);
  CHECK(contains(e.what(), "'no_entry'"));
  CHECK(contains(e.what(), "flare_plugin_entry"));
}

TEST_CASE("rejects a plugin built for ABI 2, printing both versions") {
  const auto e = load_error(in_fixtures("abi_two"));
  CHECK(e.kind() == Kind::AbiMismatch);
  const std::string m = e.what();
  CHECK(contains(m, "'abi_two'"));
  CHECK(contains(m, "built for ABI 2.0"));
  CHECK(contains(m, "this host speaks ABI " + std::to_string(FLARE_ABI_VERSION_MAJOR) + "." +
                        std::to_string(FLARE_ABI_VERSION_MINOR)));
}

TEST_CASE("rejects an aggregator asked for as a trainer") {
  const auto e = load_error(in_fixtures("wrong_kind"), FLARE_PLUGIN_TRAINER);
  CHECK(e.kind() == Kind::WrongKind);
  CHECK(contains(e.what(), "is an aggregator plugin, expected a trainer"));
}

TEST_CASE("accepts the same aggregator when asked for an aggregator") {
  const auto plugin = load_plugin(in_fixtures("wrong_kind"), FLARE_PLUGIN_AGGREGATOR);
  CHECK(plugin.aggregator_api().struct_size == sizeof(flare_aggregator_api_v1));
}

TEST_CASE("rejects a function table shorter than ABI 1's") {
  const auto e = load_error(in_fixtures("short_table"));
  CHECK(e.kind() == Kind::AbiMismatch);
  const std::string m = e.what();
  CHECK(contains(m, "trainer table struct_size is " +
                        std::to_string(offsetof(flare_trainer_api_v1, evaluate))));
  // The least a 1.x host accepts is the table as 1.0 shipped it, not today's.
  CHECK(contains(m, "ABI 1.0 needs at least " + std::to_string(FLARE_TRAINER_API_SIZE_1_0)));
}

TEST_CASE("refuses an aggregator declaring streamed updates without all five calls") {
  const auto e = load_error(in_fixtures("half_streamed"), FLARE_PLUGIN_AGGREGATOR);
  CHECK(e.kind() == Kind::AbiMismatch);
  CHECK(contains(e.what(), "its function table has no 'accept_chunk'"));
}

TEST_CASE("refuses an aggregator with half of the state pair or a property bit it does not know") {
  auto e = load_error(in_fixtures("half_state"), FLARE_PLUGIN_AGGREGATOR);
  CHECK(e.kind() == Kind::AbiMismatch);
  CHECK(contains(e.what(), "its function table has 'get_state' without 'set_state'"));
  e = load_error(in_fixtures("unknown_property"), FLARE_PLUGIN_AGGREGATOR);
  CHECK(e.kind() == Kind::AbiMismatch);
  CHECK(contains(e.what(), "its properties have bits this host does not know (0x10000000000)"));
}

TEST_CASE("rejects a plugin name that is a path") {
  const auto e = load_error({"../counter", {}, {fixtures}});
  CHECK(e.kind() == Kind::NotFound);
}

TEST_CASE("refuses a plugin whose version the job does not allow, naming both") {
  PluginRequest request = in_fixtures("counter");  // states version 0.1.0
  request.version = ">=1.0";
  const auto error = load_error(request);
  CHECK(error.kind() == Kind::VersionMismatch);
  CHECK_MESSAGE(contains(error.what(), "is version 0.1.0, the job asks for >=1.0"), error.what());
  request.version = "0.1";
  CHECK(load_plugin(request, FLARE_PLUGIN_TRAINER).name() == "counter");
}

TEST_CASE("loads a verified plugin only while its bytes still hash to what the site verified") {
  PluginRequest request = in_fixtures("counter");
  request.sha256 = flare::policy::sha256_of_file(fixtures / "libflare_counter.so");
  CHECK(std::string(load_plugin(request, FLARE_PLUGIN_TRAINER).descriptor().name) == "counter");
  request.sha256 = std::string(64, '0');  // the file was swapped after the site's check
  const auto error = load_error(request);
  CHECK(error.kind() == Kind::HashMismatch);
  CHECK_MESSAGE(contains(error.what(), "the file changed since"), error.what());
}
