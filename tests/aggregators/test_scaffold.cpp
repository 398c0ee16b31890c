// The shipped scaffold plugin, loaded from its .so and driven through the C
// ABI: the server step against hand-computed values, whole and streamed
// updates, its state across a restart, and what it refuses.
#include "plugin_host/config_validation.hpp"
#include "plugin_host/plugin_instances.hpp"

#include "fedavg_fixtures.hpp"

#include <cmath>
#include <string>
#include <vector>

#include <doctest/doctest.h>

using namespace flare::host;
using namespace flare::testing;

namespace {

LoadedPlugin scaffold_plugin() {
  return load_plugin({"scaffold", FLARE_SCAFFOLD_PLUGIN, {}}, FLARE_PLUGIN_AGGREGATOR);
}

// A model of one float32 [2] weight, its control variate and an int64 counter.
struct Model {
  std::vector<float> w;
  std::vector<float> c;
  int64_t count = 0;
  int64_t shape[1] = {2};

  std::vector<flare_named_tensor> tensors() {
    return {view("w", w.data(), {kDLFloat, 32, 1}, shape, 1),
            view("scaffold.c/w", c.data(), {kDLFloat, 32, 1}, shape, 1),
            view("count", &count, {kDLInt, 64, 1}, nullptr, 0)};
  }
};

// num_samples is ignored: SCAFFOLD takes the plain mean.
void send(AggregatorInstance& agg, const char* site, int64_t round, Model model) {
  agg.accept(update_of(site, round, model.tensors(), 1));
}

std::vector<float> floats(std::span<const flare_named_tensor> model, const std::string& name) {
  const auto* data = static_cast<const float*>(find(model, name).tensor.data);
  return {data, data + 2};
}

Model result_of(std::span<const flare_named_tensor> model) {
  return {floats(model, "w"), floats(model, "scaffold.c/w"),
          *static_cast<const int64_t*>(find(model, "count").tensor.data)};
}

void check_near(const std::vector<float>& got, const std::vector<float>& expected) {
  REQUIRE(got.size() == expected.size());
  for (size_t i = 0; i < got.size(); ++i) CHECK(std::abs(got[i] - expected[i]) < 1e-6);
}

constexpr const char* kConfig = R"({"server_lr": 0.5, "num_sites": 4})";

// Round 0 from x = [1, 2], c = 0: sites a and b propose y = [3, 2] / [1, 6]
// and c + dc = [0.4, -0.2] / [0.2, 0.6]. Means [2, 4] and [0.3, 0.2]:
// x = [1, 2] + 0.5 * [1, 2] = [1.5, 3], c = 0 + 2/4 * [0.3, 0.2] = [0.15, 0.1].
Model first_round(AggregatorInstance& agg) {
  Model global{{1, 2}, {0, 0}, 0};
  agg.begin_round(0, global.tensors());
  send(agg, "a", 0, {{3, 2}, {0.4f, -0.2f}, 5});
  send(agg, "b", 0, {{1, 6}, {0.2f, 0.6f}, 7});
  return result_of(agg.finalize());
}

}  // namespace

TEST_CASE("scaffold steps x by server_lr and c by |S|/N towards the proposals' mean") {
  const HostServices host;
  AggregatorInstance agg(scaffold_plugin(), kConfig, host);
  Model global = first_round(agg);
  check_near(global.w, {1.5f, 3});
  check_near(global.c, {0.15f, 0.1f});
  CHECK(global.count == 7);  // the latest update's
  // Round 1, one site of four: x = [1.5, 3] + 0.5 * ([2.5, 3] - [1.5, 3]),
  // c = [0.15, 0.1] + 1/4 * ([0.35, 0.1] - [0.15, 0.1]).
  agg.begin_round(1, global.tensors());
  send(agg, "a", 1, {{2.5f, 3}, {0.35f, 0.1f}, 9});
  const Model next = result_of(agg.finalize());
  check_near(next.w, {2, 3});
  check_near(next.c, {0.2f, 0.1f});
}

TEST_CASE("without num_sites every site counts as taking part: c moves to the proposals' mean") {
  const HostServices host;
  AggregatorInstance agg(scaffold_plugin(), "{}", host);
  const Model global = first_round(agg);
  check_near(global.w, {2, 4});  // server_lr 1: FedAvg's plain mean
  check_near(global.c, {0.3f, 0.2f});
}

namespace {

// Streams a site's model as the host would: chunks of one element.
struct StreamedSite {
  Model model;
  std::vector<flare_named_tensor> views = model.tensors();

  flare_update_chunk chunk(size_t tensor, size_t element) const {
    const DLTensor& t = views[tensor].tensor;
    flare_update_chunk c{};
    c.part = FLARE_UPDATE_WEIGHTS;
    c.tensor_index = tensor;
    c.tensor = &views[tensor];
    c.element_offset = element;
    c.num_elements = 1;
    c.data = static_cast<const std::byte*>(t.data) + element * ((t.dtype.bits + 7) / 8);
    return c;
  }
  static size_t elements(size_t tensor) { return tensor == 2 ? 1 : 2; }  // "count" is a scalar
};

SiteUpdateFields header_of(const char* site) {
  SiteUpdateFields h;
  h.site = site;
  h.num_samples = 1;
  h.num_steps = 1;
  return h;
}

}  // namespace

TEST_CASE("scaffold folds streamed updates as they arrive, as it folds whole ones") {
  const HostServices host;
  AggregatorInstance whole(scaffold_plugin(), kConfig, host);
  const Model expected = first_round(whole);

  AggregatorInstance agg(scaffold_plugin(), kConfig, host);
  REQUIRE(agg.folds_chunks());
  Model global{{1, 2}, {0, 0}, 0};
  agg.begin_round(0, global.tensors());
  const StreamedSite a{{{3, 2}, {0.4f, -0.2f}, 5}}, b{{{1, 6}, {0.2f, 0.6f}, 7}};
  const StreamedSite dropped{{{100, -100}, {9, 9}, 1}};
  agg.begin_update(1, header_of("a"));
  agg.begin_update(2, header_of("b"));
  agg.begin_update(3, header_of("dropped"));
  // The tensors in reverse order, the sites' pieces interleaved, a's before
  // b's (the whole updates' order of additions); "dropped" sends w, then is
  // cut off: its pieces are retracted.
  for (size_t tensor = 3; tensor-- > 0;)
    for (size_t e = 0; e < StreamedSite::elements(tensor); ++e) {
      agg.accept_chunk(1, a.chunk(tensor, e));
      agg.accept_chunk(2, b.chunk(tensor, e));
      if (tensor == 0) agg.accept_chunk(3, dropped.chunk(tensor, e));
    }
  for (size_t e = 0; e < 2; ++e) agg.retract_chunk(3, dropped.chunk(0, e));
  agg.abort_update(3);
  agg.end_update(2);
  agg.end_update(1);
  const Model streamed = result_of(agg.finalize());
  check_near(streamed.w, expected.w);
  CHECK(streamed.c == expected.c);  // c's sums never saw the dropped site: bit for bit
  CHECK(streamed.count == 5);       // the latest completed update's (a ended last)
}

TEST_CASE("scaffold's state (c) carries across a restart: a fresh one given it steps identically") {
  const HostServices host;
  AggregatorInstance before(scaffold_plugin(), kConfig, host);
  REQUIRE(before.has_state());
  first_round(before);
  const auto state = before.get_state();
  REQUIRE(state.tensors.size() == 1);
  CHECK(std::string(state.tensors[0].name) == "scaffold.c/w");
  check_near(floats(state.tensors, "scaffold.c/w"), {0.15f, 0.1f});
  std::vector<float> c_copy = floats(state.tensors, "scaffold.c/w");
  int64_t shape[1] = {2};
  const std::vector<flare_named_tensor> saved = {
      view("scaffold.c/w", c_copy.data(), {kDLFloat, 32, 1}, shape, 1)};

  AggregatorInstance restarted(scaffold_plugin(), kConfig, host);
  restarted.set_state(saved, std::string(state.meta_json));
  AggregatorInstance forgetful(scaffold_plugin(), kConfig, host);
  // A global model whose c was lost (zeros): the state's c is the one stepped.
  const auto round_one = [](AggregatorInstance& agg) {
    Model global{{1.5f, 3}, {0, 0}, 0};
    agg.begin_round(1, global.tensors());
    send(agg, "a", 1, {{2.5f, 3}, {0.35f, 0.1f}, 9});
    send(agg, "c", 1, {{0.5f, 1}, {0.15f, 0.3f}, 9});
    return result_of(agg.finalize());
  };
  const Model a = round_one(before), b = round_one(restarted), lost = round_one(forgetful);
  CHECK(a.w == b.w);
  CHECK(a.c == b.c);  // bit for bit
  // c = [0.15, 0.1] + 2/4 * ([0.25, 0.2] - [0.15, 0.1])
  check_near(b.c, {0.2f, 0.15f});
  CHECK(lost.c != b.c);
}

TEST_CASE("scaffold refuses a model without control variates, a non-finite update, a bad config") {
  const HostServices host;
  AggregatorInstance agg(scaffold_plugin(), "{}", host);
  std::vector<float> w = {1, 2};
  int64_t shape[1] = {2};
  const std::vector<flare_named_tensor> plain = {view("w", w.data(), {kDLFloat, 32, 1}, shape, 1)};
  CHECK(contains(call_error([&] { agg.begin_round(0, plain); }).what(),
                 "algorithm = \"scaffold\""));

  Model global{{1, 2}, {0, 0}, 0};
  agg.begin_round(0, global.tensors());
  const auto refused = call_error([&] { send(agg, "bad", 0, {{NAN, 1}, {0, 0}, 1}); });
  CHECK(refused.code() == FLARE_ERROR_INVALID_ARGUMENT);
  CHECK(contains(refused.what(), "tensor 'w' holds NaN"));
  send(agg, "good", 0, {{3, 4}, {0.5f, 0.5f}, 1});
  check_near(result_of(agg.finalize()).w, {3, 4});  // the refused one left no trace

  CHECK(contains(call_error([&] {
                   validate_aggregator_config(scaffold_plugin(), R"({"server_lr": 0})", host);
                 }).what(),
                 "option 'server_lr'"));
  CHECK(contains(call_error([&] {
                   validate_aggregator_config(scaffold_plugin(), R"({"num_sites": 0})", host);
                 }).what(),
                 "option 'num_sites'"));
}
