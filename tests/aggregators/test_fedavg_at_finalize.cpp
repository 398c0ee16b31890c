// fedavg's "fold": "at_finalize": every update kept until finalize
// (FLARE_AGGREGATOR_KEEPS_UPDATES through instance_properties) and averaged
// there in one pass. Loaded from its .so and driven through the C ABI.
#include "plugin_host/plugin_instances.hpp"

#include "fedavg_fixtures.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include <doctest/doctest.h>

using namespace flare::host;
using namespace flare::testing;

namespace {

// Crosses a parallel chunk (kChunkElements, 2^18) and ends mid-block.
constexpr size_t kFloats = (size_t{1} << 18) + 4099;
constexpr size_t kDoubles = 5003;

// A site's model: float32 [kFloats], float64 [kDoubles], an int64 counter.
struct SiteModel {
  std::string site;
  std::vector<float> weight = std::vector<float>(kFloats);
  std::vector<double> bias = std::vector<double>(kDoubles);
  int64_t batches = 0;
  double samples = 1;
  int64_t steps = 1;
  int64_t weight_shape[1] = {static_cast<int64_t>(kFloats)};
  int64_t bias_shape[1] = {static_cast<int64_t>(kDoubles)};
  std::vector<flare_named_tensor> views;

  SiteModel(std::string name, uint32_t seed) : site(std::move(name)) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.5f, 2.0f);
    for (float& v : weight) v = normal(rng);
    for (double& v : bias) v = normal(rng);
    batches = seed;
    samples = 1 + seed % 97;
    steps = 1 + seed % 13;
    views = {view("fc.weight", weight.data(), {kDLFloat, 32, 1}, weight_shape, 1),
             view("fc.bias", bias.data(), {kDLFloat, 64, 1}, bias_shape, 1),
             view("bn.num_batches_tracked", &batches, {kDLInt, 64, 1}, nullptr, 0)};
  }
  SiteModel(const SiteModel&) = delete;  // views point into it
  flare_site_update update(int64_t round = 0) const {
    return update_of(site.c_str(), round, views, samples, steps);
  }
};

struct Result {
  std::vector<float> weight;
  std::vector<double> bias;
  int64_t batches;
};

Result read(std::span<const flare_named_tensor> model) {
  const auto* w = static_cast<const float*>(find(model, "fc.weight").tensor.data);
  const auto* b = static_cast<const double*>(find(model, "fc.bias").tensor.data);
  return {{w, w + kFloats},
          {b, b + kDoubles},
          *static_cast<const int64_t*>(find(model, "bn.num_batches_tracked").tensor.data)};
}

// One round of `config` over the sites in `order`.
Result run_round(const std::string& config, const std::vector<const SiteModel*>& order,
                 const HostServices& host) {
  AggregatorInstance agg(fedavg_plugin(), config, host);
  agg.begin_round(0, order.front()->views);
  for (const SiteModel* s : order) agg.accept(s->update());
  return read(agg.finalize());
}

double weight_of(const SiteModel& s, const std::string& weighting) {
  if (weighting == "num_steps") return static_cast<double>(s.steps);
  if (weighting == "uniform") return 1.0;
  return s.samples;
}

// Checks `got` against the float64 weighted mean within the one-pass
// mean's bound (kept_mean.hpp): (n + 3) * 2^-24 * sum w|x| / sum w.
void check_against_reference(const Result& got, const std::vector<const SiteModel*>& sites,
                             const std::string& weighting) {
  double total = 0;
  for (const SiteModel* s : sites) total += weight_of(*s, weighting);
  const double n = static_cast<double>(sites.size());
  size_t worst = 0;
  double worst_excess = -1;
  for (size_t i = 0; i < kFloats; ++i) {
    double exact = 0, magnitude = 0;
    for (const SiteModel* s : sites) {
      exact += weight_of(*s, weighting) * s->weight[i];
      magnitude += weight_of(*s, weighting) * std::fabs(s->weight[i]);
    }
    const double bound = (n + 3) * std::ldexp(1.0, -24) * magnitude / total;
    const double excess = std::fabs(got.weight[i] - exact / total) - bound;
    if (excess > worst_excess) worst_excess = excess, worst = i;
  }
  INFO("worst element " << worst);
  CHECK(worst_excess <= 0);
  for (size_t i = 0; i < kDoubles; ++i) {
    double exact = 0;
    for (const SiteModel* s : sites) exact += weight_of(*s, weighting) * s->bias[i];
    CHECK(got.bias[i] == doctest::Approx(exact / total).epsilon(1e-13));
  }
}

struct FiveSites {
  SiteModel a{"site-a", 11}, b{"site-b", 22}, c{"site-c", 33}, d{"site-d", 44}, e{"site-e", 55};
  std::vector<const SiteModel*> all() const { return {&a, &b, &c, &d, &e}; }
};

}  // namespace

TEST_CASE("fedavg declares keeping updates only when its config folds at finalize") {
  const HostServices host;
  const auto plugin = fedavg_plugin();
  const auto& api = plugin.aggregator_api();
  REQUIRE(FLARE_HAS_FIELD(&api, flare_aggregator_api_v1, instance_properties));
  CHECK((api.instance_properties != nullptr));
  CHECK(api.properties == 0);  // the table's: the default config's

  for (const std::string config : {"{}", R"({"fold": "as_arrived"})"}) {
    CAPTURE(config);
    const AggregatorInstance agg(plugin, config, host);
    CHECK_FALSE(agg.keeps_updates());
    CHECK(agg.folds_chunks());
  }
  const AggregatorInstance kept(plugin, R"({"fold": "at_finalize"})", host);
  CHECK(kept.keeps_updates());
  CHECK_FALSE(kept.folds_chunks());  // the host hands it whole updates
}

TEST_CASE("fedavg refuses an unknown fold, naming the option") {
  const HostServices host;
  const auto error = call_error([&] {
    const AggregatorInstance agg(fedavg_plugin(), R"({"fold": "later"})", host);
  });
  CHECK(contains(error.plugin_message(), "fold"));
}

TEST_CASE("at_finalize equals as_arrived and a float64 reference, in any arrival order") {
  const HostServices host;
  const FiveSites sites;
  for (const std::string weighting : {"num_samples", "num_steps", "uniform"}) {
    CAPTURE(weighting);
    std::vector<const SiteModel*> order = sites.all();
    std::mt19937 rng(7);
    for (int shuffle = 0; shuffle < 3; ++shuffle) {
      std::shuffle(order.begin(), order.end(), rng);
      const std::string weight = R"("weight": ")" + weighting + R"(")";
      const Result kept = run_round("{" + weight + R"(, "fold": "at_finalize"})", order, host);
      const Result folded = run_round("{" + weight + "}", order, host);
      check_against_reference(kept, order, weighting);
      // The same sums; float32 scaled in float32 at finalize, not in double.
      size_t far = 0;
      for (size_t i = 0; i < kFloats; ++i)
        if (std::fabs(kept.weight[i] - folded.weight[i]) >
            std::ldexp(std::fabs(folded.weight[i]), -22))
          ++far;
      CHECK(far == 0);
      CHECK(kept.bias == folded.bias);  // float64: the same operations, the same bits
      CHECK(kept.batches == order.back()->batches);  // the latest accepted update's
    }
  }
}

TEST_CASE("at_finalize with compensated sums is within one float32 rounding of the mean") {
  const HostServices host;
  const FiveSites sites;
  const auto order = sites.all();
  const Result kept = run_round(R"({"fold": "at_finalize", "sum": "compensated"})", order, host);
  const Result folded = run_round(R"({"sum": "compensated"})", order, host);
  double total = 0;
  for (const SiteModel* s : order) total += s->samples;
  for (size_t i = 0; i < kFloats; ++i) {
    double exact = 0, magnitude = 0;
    for (const SiteModel* s : order) {
      exact += s->samples * s->weight[i];
      magnitude += s->samples * std::fabs(s->weight[i]);
    }
    exact /= total;
    // One rounding of the mean, plus the pair's own error (about 2^-48 of the sum).
    REQUIRE(std::fabs(kept.weight[i] - exact) <=
            std::ldexp(std::fabs(exact), -23) + std::ldexp(magnitude / total, -44));
  }
  CHECK(kept.weight == folded.weight);
}

TEST_CASE("at_finalize: a refused update leaves no trace") {
  const HostServices host;
  const FiveSites sites;
  SiteModel refused("site-bad", 66);
  refused.batches = 999;
  const auto order = sites.all();
  const Result clean = run_round(R"({"fold": "at_finalize"})", order, host);

  AggregatorInstance agg(fedavg_plugin(), R"({"fold": "at_finalize"})", host);
  agg.begin_round(0, order.front()->views);
  for (const SiteModel* s : order) {
    agg.accept(s->update());
    flare_site_update bad = refused.update();
    bad.num_samples = -1;  // refused weight
    CHECK(contains(call_error([&] { agg.accept(bad); }).plugin_message(), "site-bad"));
    bad = refused.update(/*round=*/3);  // refused round
    CHECK(contains(call_error([&] { agg.accept(bad); }).plugin_message(), "round 3"));
    auto wrong_shape = refused.views;
    int64_t other_shape[1] = {7};
    wrong_shape[0].tensor.shape = other_shape;
    bad = update_of("site-bad", 0, wrong_shape, 5);
    CHECK(contains(call_error([&] { agg.accept(bad); }).plugin_message(), "fc.weight"));
  }
  const Result got = read(agg.finalize());
  CHECK(got.weight == clean.weight);
  CHECK(got.bias == clean.bias);
  CHECK(got.batches == clean.batches);
}

TEST_CASE("at_finalize hands back every byte of every kept update it read") {
  std::atomic<size_t> released_bytes{0};  // finalize releases from all its threads
  HostCallbacks callbacks;
  callbacks.release_pages = [&](const void*, size_t bytes) { released_bytes += bytes; };
  const HostServices host(std::move(callbacks));
  const FiveSites sites;
  run_round(R"({"fold": "at_finalize"})", sites.all(), host);
  // The integer counter is copied from the latest update only.
  CHECK(released_bytes.load() ==
        5 * (kFloats * sizeof(float) + kDoubles * sizeof(double)) + sizeof(int64_t));
}

TEST_CASE("at_finalize: finalize without an update, or twice, is an error") {
  const HostServices host;
  const FiveSites sites;
  AggregatorInstance agg(fedavg_plugin(), R"({"fold": "at_finalize"})", host);
  agg.begin_round(0, sites.a.views);
  CHECK(contains(call_error([&] { agg.finalize(); }).plugin_message(), "no update"));
  agg.accept(sites.a.update());
  agg.finalize();
  CHECK(contains(call_error([&] { agg.finalize(); }).plugin_message(), "finalize"));
  CHECK(contains(call_error([&] { agg.accept(sites.b.update()); }).plugin_message(),
                 "outside a round"));
}
