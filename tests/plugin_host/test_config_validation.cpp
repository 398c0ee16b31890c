// validate_config (ABI 1.2) through the host: a plugin's refusal becomes a
// PluginCallError naming the plugin and the call; a plugin of ABI 1.1 offers
// no check and is not asked.
#include "plugin_host/config_validation.hpp"

#include <string>

#include <doctest/doctest.h>

#include "plugin_fixtures.hpp"
#include "plugin_host/plugin_instances.hpp"

using namespace flare::host;

namespace {

const std::filesystem::path fixtures = FLARE_FIXTURE_DIR;

LoadedPlugin fixture(const std::string& name, flare_plugin_kind kind) {
  return load_plugin({name, {}, {fixtures}}, kind);
}

// Rank 0 of the first of two sites of two ranks, before the job starts: a
// data folder, no work_dir.
flare_worker_info before_the_job(const char* data_dir) {
  flare_worker_info w = flare::testing::site_one();
  w.num_sites = 2;
  w.world_size = 2;
  w.local_world_size = 2;
  w.data_dir = data_dir;
  return w;
}

// The PluginCallError `call` throws.
template <class F>
PluginCallError refusal(F&& call) {
  try {
    call();
  } catch (const PluginCallError& e) {
    return e;
  }
  FAIL("expected the plugin to refuse");
  throw std::logic_error("unreachable");
}

}  // namespace

TEST_CASE("a trainer's validate_config accepts a good config and its data folder") {
  const HostServices host;
  CHECK(validate_trainer_config(fixture("validating", FLARE_PLUGIN_TRAINER), R"({"lr": 1})",
                                before_the_job("/data"), host));
}

TEST_CASE("a refused option is reported with the plugin, the call and the plugin's message") {
  const HostServices host;
  const auto plugin = fixture("validating", FLARE_PLUGIN_TRAINER);
  const auto e = refusal(
      [&] { validate_trainer_config(plugin, R"({"bad": 1})", before_the_job("/data"), host); });
  CHECK(e.code() == FLARE_ERROR_INVALID_ARGUMENT);
  CHECK(e.plugin_message() == "option 'bad': not allowed");
  const std::string what = e.what();
  CHECK_MESSAGE(what.find("'validating'") != std::string::npos, what);
  CHECK_MESSAGE(what.find(plugin.path().string()) != std::string::npos, what);
  CHECK_MESSAGE(what.find("validate_config") != std::string::npos, what);
}

TEST_CASE("missing data is refused as such, from the data folder the host passes") {
  const HostServices host;
  const auto e = refusal([&] {
    validate_trainer_config(fixture("validating", FLARE_PLUGIN_TRAINER), "{}",
                            before_the_job(""), host);
  });
  CHECK(e.code() == FLARE_ERROR_NOT_FOUND);
}

TEST_CASE("a plugin of the C++ SDK offers the check even without a schema") {
  const HostServices host;
  CHECK(validate_trainer_config(fixture("counter", FLARE_PLUGIN_TRAINER), R"({"size": 2})",
                                before_the_job("/data"), host));
}

TEST_CASE("plugins built against the frozen ABI 1.1 header offer no check and still run") {
  const HostServices host;
  const auto trainer = fixture("abi_1_1_trainer", FLARE_PLUGIN_TRAINER);
  CHECK_FALSE(validate_trainer_config(trainer, "{}", before_the_job("/data"), host));
  const auto aggregator = fixture("abi_1_1_aggregator", FLARE_PLUGIN_AGGREGATOR);
  CHECK_FALSE(validate_aggregator_config(aggregator, "{}", host));
  // Their create() is the first to see the config, as under a 1.1 host.
  const flare_worker_info worker = before_the_job("/data");
  CHECK_NOTHROW(TrainerInstance(trainer, "{}", worker, host));
  CHECK_NOTHROW(AggregatorInstance(aggregator, "{}", host));
}
