// The append-only promise, end to end: plugins built against the frozen ABI 1.0
// header as first shipped (fixtures/abi_1_0/) and the frozen 1.1 one
// (fixtures/abi_1_1/), and a plugin claiming a later minor, run under this
// host. (A later major is refused: test_plugin_loader.cpp, "abi_two".)
#include "plugin_host/plugin_instances.hpp"

#include <stdexcept>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "vector_view.hpp"

using namespace flare::host;

namespace {

const std::filesystem::path fixtures = FLARE_FIXTURE_DIR;

LoadedPlugin fixture(const std::string& name, flare_plugin_kind kind) {
  return load_plugin({name, {}, {fixtures}}, kind);
}

// Two ranks holding the same values: every all-reduce doubles them. Counts the
// asynchronous starts, to see which host function a plugin chose.
class TwinRanks final : public Collectives {
 public:
  int rank() const override { return 0; }
  int world_size() const override { return 2; }
  void all_reduce(DLTensor& tensor, flare_reduce_op) override {
    auto* values = static_cast<float*>(tensor.data);
    for (int64_t i = 0; i < tensor.shape[0]; ++i) values[i] *= 2;
  }
  std::unique_ptr<Work> all_reduce_start(DLTensor& tensor, flare_reduce_op op) override {
    ++starts;
    return Collectives::all_reduce_start(tensor, op);
  }
  void broadcast(DLTensor&, int) override {}
  void barrier() override {}
  int starts = 0;
};

// The tensor "w" over `values`; `length` must outlive it.
flare_named_tensor weights_view(std::vector<float>& values, int64_t& length) {
  return {sizeof(flare_named_tensor), "w", flare::testing::vector_view(values, length)};
}

std::vector<float> values_of(std::span<const flare_named_tensor> tensors) {
  REQUIRE(tensors.size() == 1);
  const auto* data = static_cast<const float*>(tensors[0].tensor.data);
  return {data, data + tensors[0].tensor.shape[0]};
}

// The tiny trainer ignores where it runs.
const flare_worker_info anywhere{};

// set_weights, train (round 1: +2 each, then doubled by the group), evaluate;
// `async_starts`: the asynchronous all-reduces the plugin is expected to start.
void train_one_round(TrainerInstance& trainer, const TwinRanks& group, int async_starts) {
  std::vector<float> start{1, 2, 3};
  int64_t length = 0;
  const flare_named_tensor w = weights_view(start, length);
  trainer.set_weights({&w, 1});

  const TrainResult result = trainer.train({sizeof(flare_round_info), 1, 4});
  CHECK(values_of(result.weights()) == std::vector<float>{6, 8, 10});
  CHECK(result.num_samples() == 10.0);
  CHECK(result.num_steps() == 1);
  CHECK(result.metrics_json() == R"({"round": 1})");
  // A 1.1 plugin finds the asynchronous all-reduce in this host's table; a 1.0
  // one never heard of it and uses the blocking one.
  CHECK(group.starts == async_starts);
  CHECK(trainer.evaluate("test") == R"({"split": "test", "sum": 24.0})");
}

// Loads fixture `name` built against the frozen 1.`minor` header, checks what
// it declares and runs one round under this host.
void check_frozen_trainer(const std::string& name, uint32_t minor, int async_starts) {
  const auto plugin = fixture(name, FLARE_PLUGIN_TRAINER);
  CHECK(plugin.descriptor().abi_major == 1);
  CHECK(plugin.descriptor().abi_minor == minor);
  CHECK(plugin.descriptor().struct_size == FLARE_PLUGIN_DESCRIPTOR_SIZE_1_0);
  CHECK(plugin.trainer_api().struct_size == FLARE_TRAINER_API_SIZE_1_0);

  TwinRanks group;
  const HostServices host({}, &group);
  TrainerInstance trainer(plugin, "{}", anywhere, host);
  train_one_round(trainer, group, async_starts);
}

// Two sites' updates weighted by samples, through a plugin built against the
// frozen 1.`minor` header; its table ends before ABI 1.3, so whole updates only.
void check_frozen_aggregator(const std::string& name, uint32_t minor) {
  const auto plugin = fixture(name, FLARE_PLUGIN_AGGREGATOR);
  CHECK(plugin.descriptor().abi_minor == minor);
  CHECK(plugin.aggregator_api().struct_size == FLARE_AGGREGATOR_API_SIZE_1_0);

  const HostServices host;
  AggregatorInstance aggregator(plugin, "{}", host);
  std::vector<float> global{0, 0};
  int64_t global_length = 0;
  const flare_named_tensor model = weights_view(global, global_length);
  aggregator.begin_round(0, {&model, 1});

  std::vector<float> from_a{1, 1}, from_b{5, 9};
  int64_t length_a = 0, length_b = 0;
  const flare_named_tensor a = weights_view(from_a, length_a);
  const flare_named_tensor b = weights_view(from_b, length_b);
  flare_site_update update{};
  update.site = "site-a";
  update.weights = &a;
  update.num_weights = 1;
  update.num_samples = 1;
  aggregator.accept(update);
  update.site = "site-b";
  update.weights = &b;
  update.num_samples = 3;
  aggregator.accept(update);

  // Weighted by samples: (1 * 1 + 3 * 5) / 4 and (1 * 1 + 3 * 9) / 4.
  CHECK(values_of(aggregator.finalize()) == std::vector<float>{4, 7});

  CHECK_FALSE(aggregator.folds_chunks());
  CHECK_THROWS_AS(aggregator.begin_update(1, {.site = "site-a"}), std::logic_error);
  CHECK_NOTHROW(aggregator.abort_update(1));
}

}  // namespace

TEST_CASE("a trainer built against the ABI 1.0 header as first shipped trains under this host") {
  check_frozen_trainer("abi_1_0_trainer", 0, 0);
}

TEST_CASE("an aggregator built against the ABI 1.0 header as first shipped aggregates under this host") {
  check_frozen_aggregator("abi_1_0_aggregator", 0);
}

TEST_CASE("a trainer built against the frozen ABI 1.1 header trains under this host") {
  check_frozen_trainer("abi_1_1_trainer", 1, 1);
}

TEST_CASE("an aggregator built against the frozen ABI 1.1 header aggregates under this host") {
  check_frozen_aggregator("abi_1_1_aggregator", 1);
}

TEST_CASE("accepts a plugin of a later minor with a larger descriptor and table, and runs it") {
  const auto plugin = fixture("future_minor", FLARE_PLUGIN_TRAINER);
  CHECK(plugin.descriptor().abi_major == FLARE_ABI_VERSION_MAJOR);
  CHECK(plugin.descriptor().abi_minor == FLARE_ABI_VERSION_MINOR + 5);
  CHECK(plugin.descriptor().struct_size > sizeof(flare_plugin_descriptor));
  CHECK(plugin.trainer_api().struct_size > sizeof(flare_trainer_api_v1));

  TwinRanks group;
  const HostServices host({}, &group);
  TrainerInstance trainer(plugin, "{}", anywhere, host);
  train_one_round(trainer, group, 1);
}
