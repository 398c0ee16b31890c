#include "plugin_host/plugin_instances.hpp"

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "plugin_fixtures.hpp"

using namespace flare::host;
using flare::testing::site_one;

namespace {

const std::filesystem::path fixtures = FLARE_FIXTURE_DIR;

LoadedPlugin counter_plugin() {
  return load_plugin({"counter", {}, {fixtures}}, FLARE_PLUGIN_TRAINER);
}

flare_round_info round_info(int64_t round) { return {sizeof(flare_round_info), round, 5}; }

std::vector<float> values(std::span<const flare_named_tensor> weights) {
  REQUIRE(weights.size() == 1);
  const auto* data = static_cast<const float*>(weights[0].tensor.data);
  return {data, data + weights[0].tensor.shape[0]};
}

// Runs `call` expecting a PluginCallError and returns it.
template <class F>
PluginCallError call_error(F&& call) {
  try {
    call();
  } catch (const PluginCallError& e) {
    return e;
  }
  FAIL("expected a PluginCallError");
  throw std::logic_error("unreachable");
}

class BrokenCollectives final : public Collectives {
 public:
  int rank() const override { return 0; }
  int world_size() const override { return 2; }
  void all_reduce(DLTensor&, flare_reduce_op) override {
    throw std::runtime_error("peer rank 1 closed the connection");
  }
  void broadcast(DLTensor&, int) override {}
  void barrier() override {}
};

}  // namespace

TEST_CASE("a trainer round-trips weights, trains and evaluates through the C ABI") {
  std::vector<std::string> metrics;
  HostCallbacks callbacks;
  callbacks.metric = [&](std::string_view name, double, int64_t) { metrics.emplace_back(name); };
  const HostServices host(callbacks);
  TrainerInstance trainer(counter_plugin(), R"({"size": 3})", site_one(), host);

  CHECK(values(trainer.get_weights()) == std::vector<float>{0, 0, 0});

  float start[3] = {1, 2, 3};
  int64_t shape[1] = {3};
  flare_named_tensor w{sizeof(flare_named_tensor), "w", {}};
  w.tensor = {start, {kDLCPU, 0}, 1, {kDLFloat, 32, 1}, shape, nullptr, 0};
  trainer.set_weights({&w, 1});
  start[0] = 100;  // the plugin copied the weights during the call
  CHECK(values(trainer.get_weights()) == std::vector<float>{1, 2, 3});

  const TrainResult result = trainer.train(round_info(1));
  CHECK(values(result.weights()) == std::vector<float>{2, 3, 4});
  CHECK(result.num_samples() == 20.0);
  CHECK(result.num_steps() == 5);
  CHECK(result.aux().empty());
  CHECK(result.metrics_json() == R"({"train_loss":0.5})");
  CHECK(result.meta_json() == "{}");
  CHECK(metrics == std::vector<std::string>{"train_loss"});

  CHECK(trainer.evaluate("validation") == R"({"split":"validation","sum":9.0})");
}

TEST_CASE("an instance keeps its plugin library loaded by itself") {
  const HostServices host;
  // The LoadedPlugin is a temporary: only the instance holds the library.
  auto trainer = std::make_unique<TrainerInstance>(counter_plugin(), "{}", site_one(), host);
  CHECK(trainer->train(round_info(0)).num_samples() == 10.0);
  trainer.reset();
}

TEST_CASE("a plugin's error surfaces as PluginCallError with its code and message") {
  const HostServices host;
  TrainerInstance trainer(counter_plugin(), R"({"fail_in": "train"})", site_one(), host);
  const auto e = call_error([&] { trainer.train(round_info(0)); });
  CHECK(e.code() == FLARE_ERROR_IO);
  CHECK(e.plugin_message() == "disk on fire in train");
  const std::string m = e.what();
  CHECK(m.find("'counter'") != std::string::npos);
  CHECK(m.find("train failed with FLARE_ERROR_IO: disk on fire in train") != std::string::npos);
  // The instance is still usable after a failed call.
  CHECK(values(trainer.get_weights()).size() == 3);
}

TEST_CASE("a failing create throws and leaves nothing to destroy") {
  const HostServices host;
  const auto e = call_error(
      [&] { TrainerInstance(counter_plugin(), R"({"fail_in": "create"})", site_one(), host); });
  CHECK(e.code() == FLARE_ERROR_IO);
  CHECK(std::string(e.what()).find("create failed") != std::string::npos);
}

TEST_CASE("a standard exception inside the plugin arrives as an internal error") {
  const HostServices host;
  TrainerInstance trainer(counter_plugin(), R"({"fail_in": "evaluate", "fail_std": true})",
                          site_one(), host);
  const auto e = call_error([&] { trainer.evaluate("test"); });
  CHECK(e.code() == FLARE_ERROR_INTERNAL);
  CHECK(e.plugin_message() == "std failure in evaluate");
}

TEST_CASE("a malformed config arrives as an invalid argument") {
  const HostServices host;
  const auto e =
      call_error([&] { TrainerInstance(counter_plugin(), "{not json", site_one(), host); });
  CHECK(e.code() == FLARE_ERROR_INVALID_ARGUMENT);
}

TEST_CASE("an unknown split is reported as not found") {
  const HostServices host;
  TrainerInstance trainer(counter_plugin(), "{}", site_one(), host);
  const auto e = call_error([&] { trainer.evaluate("holdout"); });
  CHECK(e.code() == FLARE_ERROR_NOT_FOUND);
  CHECK(e.plugin_message() == "no split 'holdout'");
}

TEST_CASE("a failing collective inside train surfaces as a communication error") {
  BrokenCollectives group;
  const HostServices host({}, &group);
  TrainerInstance trainer(counter_plugin(), R"({"all_reduce": true})", site_one(), host);
  const auto e = call_error([&] { trainer.train(round_info(0)); });
  CHECK(e.code() == FLARE_ERROR_COMMUNICATION);
  CHECK(e.plugin_message() == "all_reduce failed: peer rank 1 closed the connection");
}

TEST_CASE("cancellation asked by the host stops training") {
  HostCallbacks callbacks;
  callbacks.cancelled = [] { return true; };
  const HostServices host(callbacks);
  TrainerInstance trainer(counter_plugin(), "{}", site_one(), host);
  const auto e = call_error([&] { trainer.train(round_info(0)); });
  CHECK(e.code() == FLARE_ERROR_CANCELLED);
}

TEST_CASE("instances move without destroying the plugin handle twice") {
  const HostServices host;
  TrainerInstance first(counter_plugin(), "{}", site_one(), host);
  first.train(round_info(0));
  TrainerInstance second = std::move(first);
  CHECK(values(second.get_weights()) == std::vector<float>{1, 1, 1});
}

TEST_CASE("a plugin of the wrong kind cannot back an instance") {
  const HostServices host;
  const auto aggregator = load_plugin({"wrong_kind", {}, {fixtures}}, FLARE_PLUGIN_AGGREGATOR);
  CHECK_THROWS_AS(TrainerInstance(aggregator, "{}", site_one(), host), std::logic_error);
}

TEST_CASE("an aggregator's create error names the plugin and the call") {
  const HostServices host;
  const auto aggregator = load_plugin({"wrong_kind", {}, {fixtures}}, FLARE_PLUGIN_AGGREGATOR);
  const auto e = call_error([&] { AggregatorInstance(aggregator, "{}", host); });
  CHECK(e.code() == FLARE_ERROR_UNSUPPORTED);
  CHECK(std::string(e.what()).find("'wrong_kind'") != std::string::npos);
}
