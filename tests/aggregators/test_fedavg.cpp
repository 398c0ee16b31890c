// The shipped fedavg plugin, loaded from its .so and driven through the C ABI.
#include "plugin_host/config_validation.hpp"
#include "plugin_host/plugin_instances.hpp"

#include "fedavg_fixtures.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include <doctest/doctest.h>

using namespace flare::host;
using namespace flare::testing;

namespace {

// A small model that owns its memory: a float32 [2, 2] weight, a float64 [2]
// bias and an int64 scalar counter (like BatchNorm's num_batches_tracked).
struct Model {
  std::vector<float> weight = {0, 0, 0, 0};
  std::vector<double> bias = {0, 0};
  int64_t batches = 0;
  int64_t weight_shape[2] = {2, 2};
  int64_t bias_shape[1] = {2};

  std::vector<flare_named_tensor> tensors() {
    return {view("fc.weight", weight.data(), {kDLFloat, 32, 1}, weight_shape, 2),
            view("fc.bias", bias.data(), {kDLFloat, 64, 1}, bias_shape, 1),
            view("bn.num_batches_tracked", &batches, {kDLInt, 64, 1}, nullptr, 0)};
  }
};

Model site_model(std::vector<float> weight, std::vector<double> bias, int64_t batches) {
  Model m;
  m.weight = std::move(weight);
  m.bias = std::move(bias);
  m.batches = batches;
  return m;
}

std::vector<float> floats(std::span<const flare_named_tensor> model, const std::string& name) {
  const auto& t = find(model, name);
  REQUIRE(t.tensor.dtype.code == kDLFloat);
  REQUIRE(t.tensor.dtype.bits == 32);
  const auto* data = static_cast<const float*>(t.tensor.data);
  return {data, data + 4};
}

std::vector<double> doubles(std::span<const flare_named_tensor> model, const std::string& name) {
  const auto& t = find(model, name);
  REQUIRE(t.tensor.dtype.bits == 64);
  const auto* data = static_cast<const double*>(t.tensor.data);
  return {data, data + 2};
}

int64_t integer(std::span<const flare_named_tensor> model, const std::string& name) {
  return *static_cast<const int64_t*>(find(model, name).tensor.data);
}

// Three sites of the hand-computed case below.
struct ThreeSites {
  Model a = site_model({1, 2, 3, 4}, {1, -1}, 5);
  Model b = site_model({5, 6, 7, 8}, {3, 1}, 7);
  Model c = site_model({9, 10, 11, 12}, {0, 2}, 9);
  std::vector<flare_named_tensor> ta = a.tensors(), tb = b.tensors(), tc = c.tensors();
  // samples 100 / 300 / 600, steps 10 / 10 / 30
  void send(AggregatorInstance& agg, int64_t round = 0) {
    agg.accept(update_of("site-a", round, ta, 100, 10));
    agg.accept(update_of("site-b", round, tb, 300, 10));
    agg.accept(update_of("site-c", round, tc, 600, 30));
  }
};

}  // namespace

TEST_CASE("fedavg weights each site by its number of samples") {
  const HostServices host;
  AggregatorInstance agg(fedavg_plugin(), "{}", host);
  Model global;
  agg.begin_round(0, global.tensors());
  ThreeSites sites;
  sites.send(agg);
  const auto result = agg.finalize();

  // Weights 0.1 / 0.3 / 0.6: e.g. 0.1*1 + 0.3*5 + 0.6*9 = 7.
  const auto w = floats(result, "fc.weight");
  CHECK(w[0] == doctest::Approx(7.0));
  CHECK(w[1] == doctest::Approx(8.0));
  CHECK(w[2] == doctest::Approx(9.0));
  CHECK(w[3] == doctest::Approx(10.0));
  const auto b = doubles(result, "fc.bias");
  CHECK(b[0] == doctest::Approx(1.0).epsilon(1e-12));  // 0.1*1 + 0.3*3 + 0.6*0
  CHECK(b[1] == doctest::Approx(1.4).epsilon(1e-12));  // -0.1 + 0.3 + 1.2
  CHECK(integer(result, "bn.num_batches_tracked") == 9);  // the latest update's value
}

TEST_CASE("fedavg keeps the global model's tensors, dtypes and shapes") {
  const HostServices host;
  AggregatorInstance agg(fedavg_plugin(), "{}", host);
  Model global;
  agg.begin_round(0, global.tensors());
  ThreeSites sites;
  sites.send(agg);
  const auto result = agg.finalize();
  REQUIRE(result.size() == 3);
  const auto& w = find(result, "fc.weight");
  CHECK(w.tensor.ndim == 2);
  CHECK(w.tensor.shape[0] == 2);
  CHECK(w.tensor.shape[1] == 2);
  CHECK(w.tensor.device.device_type == kDLCPU);
  CHECK(find(result, "bn.num_batches_tracked").tensor.ndim == 0);
}

TEST_CASE("fedavg can weight by optimizer steps") {
  const HostServices host;
  AggregatorInstance agg(fedavg_plugin(), R"({"weight": "num_steps"})", host);
  Model global;
  agg.begin_round(0, global.tensors());
  ThreeSites sites;
  sites.send(agg);
  // Steps 10 / 10 / 30: weights 0.2 / 0.2 / 0.6.
  const auto w = floats(agg.finalize(), "fc.weight");
  CHECK(w[0] == doctest::Approx(6.6));  // 0.2*1 + 0.2*5 + 0.6*9
  CHECK(w[3] == doctest::Approx(9.6));  // 0.2*4 + 0.2*8 + 0.6*12
}

TEST_CASE("fedavg can weight every site the same") {
  const HostServices host;
  AggregatorInstance agg(fedavg_plugin(), R"({"weight": "uniform"})", host);
  Model global;
  agg.begin_round(0, global.tensors());
  ThreeSites sites;
  sites.send(agg);
  const auto result = agg.finalize();
  const auto w = floats(result, "fc.weight");
  CHECK(w[0] == doctest::Approx(5.0));
  CHECK(w[3] == doctest::Approx(8.0));
  CHECK(doubles(result, "fc.bias")[0] == doctest::Approx(4.0 / 3.0).epsilon(1e-12));
}

TEST_CASE("fedavg accepts an update's tensors in any order") {
  const HostServices host;
  AggregatorInstance agg(fedavg_plugin(), "{}", host);
  Model global;
  agg.begin_round(0, global.tensors());
  Model site = site_model({2, 4, 6, 8}, {1, 1}, 3);
  auto tensors = site.tensors();
  std::swap(tensors[0], tensors[2]);
  agg.accept(update_of("site-a", 0, tensors, 10, 1));
  const auto result = agg.finalize();
  CHECK(floats(result, "fc.weight") == std::vector<float>{2, 4, 6, 8});
  CHECK(integer(result, "bn.num_batches_tracked") == 3);
}

TEST_CASE("integer tensors take the value of the latest accepted update") {
  const HostServices host;
  AggregatorInstance agg(fedavg_plugin(), "{}", host);
  Model global;
  agg.begin_round(0, global.tensors());
  ThreeSites sites;
  agg.accept(update_of("site-a", 0, sites.ta, 100, 10));
  agg.accept(update_of("site-c", 0, sites.tc, 600, 30));
  agg.accept(update_of("site-b", 0, sites.tb, 300, 10));
  CHECK(integer(agg.finalize(), "bn.num_batches_tracked") == 7);
}

TEST_CASE("fedavg rejects an update whose tensor has another shape, naming site and tensor") {
  const HostServices host;
  AggregatorInstance agg(fedavg_plugin(), "{}", host);
  Model global;
  agg.begin_round(0, global.tensors());
  Model bad;
  bad.weight_shape[0] = 4;
  bad.weight_shape[1] = 1;
  const auto tensors = bad.tensors();
  const auto e = call_error([&] { agg.accept(update_of("site-7", 0, tensors, 10, 1)); });
  CHECK(e.code() == FLARE_ERROR_INVALID_ARGUMENT);
  CHECK(e.plugin_message() ==
        "site 'site-7': tensor 'fc.weight' has shape [4, 1], the global model's is [2, 2]");

  // The rejected update left no trace: one good site alone gives its own model.
  Model good = site_model({1, 1, 1, 1}, {2, 2}, 1);
  const auto good_tensors = good.tensors();
  agg.accept(update_of("site-1", 0, good_tensors, 5, 1));
  CHECK(floats(agg.finalize(), "fc.weight") == std::vector<float>{1, 1, 1, 1});
}

TEST_CASE("fedavg rejects a tensor the global model does not have") {
  const HostServices host;
  AggregatorInstance agg(fedavg_plugin(), "{}", host);
  Model global;
  agg.begin_round(0, global.tensors());
  Model site;
  auto tensors = site.tensors();
  tensors[1].name = "fc.bias_renamed";
  const auto e = call_error([&] { agg.accept(update_of("site-2", 0, tensors, 10, 1)); });
  CHECK(e.plugin_message() == "site 'site-2': tensor 'fc.bias_renamed' is not in the global model");
}

TEST_CASE("fedavg rejects an update with a missing tensor") {
  const HostServices host;
  AggregatorInstance agg(fedavg_plugin(), "{}", host);
  Model global;
  agg.begin_round(0, global.tensors());
  Model site;
  auto tensors = site.tensors();
  tensors.pop_back();
  const auto e = call_error([&] { agg.accept(update_of("site-3", 0, tensors, 10, 1)); });
  CHECK(e.plugin_message() == "site 'site-3': sent 2 tensors, the global model has 3");
}

TEST_CASE("fedavg rejects a tensor of another dtype") {
  const HostServices host;
  AggregatorInstance agg(fedavg_plugin(), "{}", host);
  Model global;
  agg.begin_round(0, global.tensors());
  Model site;
  auto tensors = site.tensors();
  tensors[0].tensor.dtype = {kDLFloat, 16, 1};
  const auto e = call_error([&] { agg.accept(update_of("site-4", 0, tensors, 10, 1)); });
  CHECK(e.plugin_message() ==
        "site 'site-4': tensor 'fc.weight' has dtype float16, the global model's is float32");
}

TEST_CASE("fedavg rejects NaN or infinite values") {
  const HostServices host;
  AggregatorInstance agg(fedavg_plugin(), "{}", host);
  Model global;
  agg.begin_round(0, global.tensors());
  Model site = site_model({1, std::numeric_limits<float>::quiet_NaN(), 1, 1}, {0, 0}, 0);
  const auto tensors = site.tensors();
  const auto e = call_error([&] { agg.accept(update_of("site-5", 0, tensors, 10, 1)); });
  CHECK(e.plugin_message() == "site 'site-5': tensor 'fc.weight' holds NaN or infinite values");
  site.bias[1] = -std::numeric_limits<double>::infinity();
  site.weight[1] = 0;
  CHECK_THROWS_AS(agg.accept(update_of("site-5", 0, tensors, 10, 1)), PluginCallError);
}

namespace {

// Two big float32 tensors and a float64 one, each over several of the 2^18
// element chunks that accept folds on all cores, so that a non-finite value
// deep in one is met after other blocks and chunks were folded.
struct BigModel {
  static constexpr size_t kChunk = size_t{1} << 18;
  std::vector<float> a = std::vector<float>(3 * kChunk + 5);
  std::vector<float> b = std::vector<float>(2 * kChunk + 7);
  std::vector<double> c = std::vector<double>(2 * kChunk + 3);
  int64_t shape_a[1] = {static_cast<int64_t>(3 * kChunk + 5)};
  int64_t shape_b[1] = {static_cast<int64_t>(2 * kChunk + 7)};
  int64_t shape_c[1] = {static_cast<int64_t>(2 * kChunk + 3)};

  explicit BigModel(float scale) {
    for (size_t i = 0; i < a.size(); ++i) a[i] = scale * static_cast<float>(i % 1000 + 1);
    for (size_t i = 0; i < b.size(); ++i) b[i] = -scale * static_cast<float>(i % 777 + 1);
    for (size_t i = 0; i < c.size(); ++i) c[i] = scale * static_cast<double>(i % 555 + 1);
  }
  std::vector<flare_named_tensor> tensors() {
    return {view("a", a.data(), {kDLFloat, 32, 1}, shape_a, 1),
            view("b", b.data(), {kDLFloat, 32, 1}, shape_b, 1),
            view("c", c.data(), {kDLFloat, 64, 1}, shape_c, 1)};
  }
};

}  // namespace

TEST_CASE("fedavg takes back what it folded of an update found non-finite deep inside") {
  const HostServices host;
  AggregatorInstance agg(fedavg_plugin(), "{}", host);
  BigModel global(0), first(1), bad(1e4f), last(3);
  const auto tf = first.tensors(), tb = bad.tensors(), tl = last.tensors();
  agg.begin_round(0, global.tensors());
  agg.accept(update_of("site-1", 0, tf, 3, 1));
  // NaN in the last chunk of 'a' and near the start of 'b': the chunks and
  // blocks before them (and all of 'c') were folded, weight 5 x 1e4, then
  // taken back; the message names 'a', the first at fault in the model.
  bad.a[3 * BigModel::kChunk - 10] = std::numeric_limits<float>::quiet_NaN();
  bad.b[10] = std::numeric_limits<float>::infinity();
  const auto e = call_error([&] { agg.accept(update_of("site-2", 0, tb, 5, 1)); });
  CHECK(e.code() == FLARE_ERROR_INVALID_ARGUMENT);
  CHECK(e.plugin_message() == "site 'site-2': tensor 'a' holds NaN or infinite values");
  agg.accept(update_of("site-3", 0, tl, 2, 1));
  const auto result = agg.finalize();

  // (3 x 1 + 2 x 3) / 5 of each value, the bad site's weight not counted:
  // within flat_math.hpp's float32 bound for 4 folds (the taken-back one
  // twice); float64 far within it. Its trace, had it stayed, is 1e4 x.
  const double bound = 6 * std::ldexp(1.0, -24) * (3 * 1 + 5 * 1e4 + 2 * 3) / 5;
  size_t off = 0;
  const auto check = [&](const flare_named_tensor& t, const auto& x) {
    using T = std::decay_t<decltype(x[0])>;
    const auto* got = static_cast<const T*>(t.tensor.data);
    for (size_t i = 0; i < x.size(); ++i) {
      const double want = (3.0 * x[i] + 2.0 * 3 * x[i]) / 5;
      if (std::abs(got[i] - want) > bound * std::abs(static_cast<double>(x[i]))) ++off;
    }
  };
  check(find(result, "a"), first.a);
  check(find(result, "b"), first.b);
  check(find(result, "c"), first.c);
  CHECK(off == 0);
}

TEST_CASE("fedavg rejects a weight that is zero, negative or not finite") {
  const HostServices host;
  AggregatorInstance agg(fedavg_plugin(), "{}", host);
  Model global;
  agg.begin_round(0, global.tensors());
  Model site;
  const auto tensors = site.tensors();
  auto e = call_error([&] { agg.accept(update_of("site-6", 0, tensors, 0, 1)); });
  CHECK(contains(e.plugin_message(), "site 'site-6': weight num_samples = 0"));
  e = call_error([&] { agg.accept(update_of("site-6", 0, tensors, -3, 1)); });
  CHECK(contains(e.plugin_message(), "must be finite and > 0"));
  CHECK_THROWS_AS(agg.accept(update_of("site-6", 0, tensors, std::nan(""), 1)), PluginCallError);
}

TEST_CASE("fedavg rejects an update for another round") {
  const HostServices host;
  AggregatorInstance agg(fedavg_plugin(), "{}", host);
  Model global;
  agg.begin_round(3, global.tensors());
  Model site;
  const auto tensors = site.tensors();
  const auto e = call_error([&] { agg.accept(update_of("site-1", 2, tensors, 10, 1)); });
  CHECK(e.plugin_message() == "site 'site-1': update is for round 2, aggregating round 3");
}

TEST_CASE("finalize without any accepted update is an error") {
  const HostServices host;
  AggregatorInstance agg(fedavg_plugin(), "{}", host);
  Model global;
  agg.begin_round(4, global.tensors());
  const auto e = call_error([&] { agg.finalize(); });
  CHECK(e.code() == FLARE_ERROR_INVALID_ARGUMENT);
  CHECK(e.plugin_message() == "round 4: no update was accepted, nothing to average");
  CHECK(contains(e.what(), "finalize failed"));
}

TEST_CASE("a second round starts from a clean sum") {
  const HostServices host;
  AggregatorInstance agg(fedavg_plugin(), "{}", host);
  Model global;
  agg.begin_round(0, global.tensors());
  ThreeSites sites;
  sites.send(agg);
  agg.finalize();

  agg.begin_round(1, global.tensors());
  CHECK_THROWS_AS(agg.finalize(), PluginCallError);  // round 0's updates are gone
  Model only = site_model({3, 3, 3, 3}, {1, 2}, 11);
  const auto tensors = only.tensors();
  agg.accept(update_of("site-a", 1, tensors, 50, 5));
  const auto result = agg.finalize();
  CHECK(floats(result, "fc.weight") == std::vector<float>{3, 3, 3, 3});
  CHECK(doubles(result, "fc.bias") == std::vector<double>{1, 2});
  CHECK(integer(result, "bn.num_batches_tracked") == 11);
}

TEST_CASE("fedavg rejects an unknown config key, naming it") {
  const HostServices host;
  const auto e = call_error([&] { AggregatorInstance(fedavg_plugin(), R"({"wieght": 1})", host); });
  CHECK(e.code() == FLARE_ERROR_INVALID_ARGUMENT);
  CHECK(contains(e.plugin_message(), "unknown option 'wieght'"));
}

TEST_CASE("fedavg rejects an unknown weighting") {
  const HostServices host;
  const auto e =
      call_error([&] { AggregatorInstance(fedavg_plugin(), R"({"weight": "loss"})", host); });
  CHECK(e.code() == FLARE_ERROR_INVALID_ARGUMENT);
  CHECK(contains(e.plugin_message(), "option 'weight': expected one of \"num_samples\", "
                                    "\"num_steps\", \"uniform\", found \"loss\""));
}

TEST_CASE("fedavg checks its config in validate_config, before any aggregator exists") {
  const HostServices host;
  CHECK(validate_aggregator_config(fedavg_plugin(), R"({"weight": "uniform"})", host));
  const auto e = call_error(
      [&] { validate_aggregator_config(fedavg_plugin(), R"({"weight": "loss"})", host); });
  CHECK(e.code() == FLARE_ERROR_INVALID_ARGUMENT);
  CHECK(contains(e.what(), "validate_config"));
  CHECK(contains(e.plugin_message(), "option 'weight'"));
}

TEST_CASE("fedavg refuses a global model with a dtype it cannot average") {
  const HostServices host;
  AggregatorInstance agg(fedavg_plugin(), "{}", host);
  Model global;
  auto tensors = global.tensors();
  tensors[0].tensor.dtype = {kDLBfloat, 16, 1};
  const auto e = call_error([&] { agg.begin_round(0, tensors); });
  CHECK(e.code() == FLARE_ERROR_UNSUPPORTED);
  CHECK(contains(e.plugin_message(), "'fc.weight' has dtype bfloat16"));
}

TEST_CASE("the shipped fedavg is found beside the executable by name") {
  const auto plugin = load_plugin({"fedavg", {}, {}}, FLARE_PLUGIN_AGGREGATOR);
  CHECK(std::string(plugin.descriptor().name) == "fedavg");
}

TEST_CASE("fedavg refuses a second finalize and updates after it: the sums became the result") {
  const HostServices host;
  AggregatorInstance agg(fedavg_plugin(), "{}", host);
  Model global;
  agg.begin_round(2, global.tensors());
  ThreeSites sites;
  sites.send(agg, 2);
  agg.finalize();
  CHECK(call_error([&] { agg.finalize(); }).plugin_message() ==
        "round 2 was already finalized (its sums are its result)");
  CHECK(call_error([&] { agg.accept(update_of("site-a", 2, sites.ta, 1, 1)); }).plugin_message() ==
        "site 'site-a': update after round 2 was finalized");
}

namespace {

// A float32 model of odd sizes: one tensor of several aggregation chunks and a
// tail (so it is split over threads), one shorter than a vector.
struct FlatModel {
  std::vector<float> big, small;
  int64_t big_shape[1], small_shape[1];

  FlatModel(size_t big_n, size_t small_n, unsigned seed) : big(big_n), small(small_n) {
    big_shape[0] = static_cast<int64_t>(big_n);
    small_shape[0] = static_cast<int64_t>(small_n);
    std::mt19937 rng(seed);
    std::normal_distribution<float> value(0.0f, 1.0f);
    std::uniform_int_distribution<int> exponent(-10, 10);
    for (auto* v : {&big, &small})
      for (auto& x : *v) x = std::ldexp(value(rng), exponent(rng));
  }
  std::vector<flare_named_tensor> tensors() {
    return {view("big", big.data(), {kDLFloat, 32, 1}, big_shape, 1),
            view("small", small.data(), {kDLFloat, 32, 1}, small_shape, 1)};
  }
};

}  // namespace

TEST_CASE("fedavg equals a float64 reference to float rounding for any arrival order") {
  const size_t big_n = 3 * (size_t{1} << 18) + 13, small_n = 5;
  const std::vector<double> samples = {3, 1000, 7.5, 123456, 0.1, 42};
  std::vector<FlatModel> sites;
  for (unsigned k = 0; k < samples.size(); ++k) sites.emplace_back(big_n, small_n, 200 + k);
  std::vector<std::vector<flare_named_tensor>> tensors;
  for (auto& s : sites) tensors.push_back(s.tensors());
  const double total = std::accumulate(samples.begin(), samples.end(), 0.0);

  // reference[i] and the error a float32 result may have: half an ulp of the
  // rounded value, plus a hair for the compensation's own rounding.
  auto check_against_reference = [&](std::vector<float> FlatModel::*member,
                                     std::span<const flare_named_tensor> result,
                                     const std::string& name) {
    const auto& t = find(result, name);
    const auto* got = static_cast<const float*>(t.tensor.data);
    const size_t n = (sites[0].*member).size();
    size_t off = 0;
    for (size_t i = 0; i < n; ++i) {
      double exact = 0, magnitude = 0;
      for (size_t k = 0; k < sites.size(); ++k) {
        exact += samples[k] * (sites[k].*member)[i];
        magnitude += std::fabs(samples[k] * (sites[k].*member)[i]);
      }
      exact /= total;
      const float r = static_cast<float>(exact);
      const double ulp = std::nextafter(std::fabs(r), INFINITY) - std::fabs(r);
      if (std::fabs(got[i] - exact) > 0.5 * ulp + 1e-12 * magnitude / total) ++off;
    }
    return off;
  };

  std::vector<size_t> order(sites.size());
  std::iota(order.begin(), order.end(), 0);
  std::vector<std::vector<size_t>> orders = {order};
  std::reverse(order.begin(), order.end());
  orders.push_back(order);
  orders.push_back({3, 0, 5, 1, 4, 2});  // the heaviest site first
  orders.push_back({4, 2, 0, 5, 1, 3});  // the lightest first, the heaviest last

  // The compensated sums; the default float32 ones: test_fedavg_streamed.cpp.
  const HostServices host;
  AggregatorInstance agg(fedavg_plugin(), R"({"sum": "compensated"})", host);
  FlatModel global(big_n, small_n, 1);
  std::vector<float> first_result;
  for (size_t which = 0; which < orders.size(); ++which) {
    CAPTURE(which);
    const auto& o = orders[which];
    agg.begin_round(0, global.tensors());
    for (size_t k : o)
      agg.accept(update_of(("site-" + std::to_string(k)).c_str(), 0, tensors[k], samples[k], 1));
    const auto result = agg.finalize();
    CHECK(check_against_reference(&FlatModel::big, result, "big") == 0);
    CHECK(check_against_reference(&FlatModel::small, result, "small") == 0);
    const auto* big = static_cast<const float*>(find(result, "big").tensor.data);
    if (first_result.empty()) {
      first_result.assign(big, big + big_n);
      continue;
    }
    // Each order within half an ulp of the same exact value: at most one ulp apart.
    size_t apart = 0;
    for (size_t i = 0; i < big_n; ++i)
      apart += std::fabs(big[i] - first_result[i]) >
               std::nextafter(std::fabs(first_result[i]), INFINITY) - std::fabs(first_result[i]);
    CHECK(apart == 0);
  }
}
