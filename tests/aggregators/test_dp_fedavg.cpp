// dp_fedavg (central DP: clipped deltas, equal weights, Gaussian noise, RDP
// accountant), loaded from its .so and driven through the C ABI: the
// clipping bound, hand-computed averages, the noise's scale, epsilon against
// hand-computed accountant values, state across a restart, refusals.
#include "plugin_host/config_validation.hpp"
#include "plugin_host/plugin_instances.hpp"

#include "server_state_fixtures.hpp"

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

using namespace flare::host;
using namespace flare::testing;

namespace {

LoadedPlugin dp_plugin() {
  return load_plugin({"dp_fedavg", FLARE_DP_FEDAVG_PLUGIN, {}}, FLARE_PLUGIN_AGGREGATOR);
}

// The figures the plugin reports through host.metric.
struct Metrics {
  struct Figure {
    std::string name;
    double value;
    int64_t round;
  };
  std::vector<Figure> figures;
  HostCallbacks callbacks() {
    HostCallbacks c;
    c.metric = [this](std::string_view name, double value, int64_t step) {
      figures.push_back({std::string(name), value, step});
    };
    return c;
  }
  // The value of `name` reported for `round`; NaN if none.
  double of(const std::string& name, int64_t round) const {
    for (const Figure& f : figures)
      if (f.name == name && f.round == round) return f.value;
    return std::numeric_limits<double>::quiet_NaN();
  }
};

double norm_of_difference(const SmallModel& a, const SmallModel& b) {
  double s = 0;
  for (size_t i = 0; i < 3; ++i) s += std::pow(double(a.w[i]) - double(b.w[i]), 2);
  for (size_t i = 0; i < 2; ++i) s += std::pow(a.b[i] - b.b[i], 2);
  return std::sqrt(s);
}

// The global model moved by (dw, db).
SmallModel moved(const SmallModel& g, std::vector<float> dw, std::vector<double> db, int64_t count) {
  SmallModel s = g;
  for (size_t i = 0; i < 3; ++i) s.w[i] = g.w[i] + dw[i];
  for (size_t i = 0; i < 2; ++i) s.b[i] = g.b[i] + db[i];
  s.count = count;
  return s;
}

SmallModel a_global() {
  SmallModel g;
  g.w = {0.5f, -1.0f, 2.0f};
  g.b = {0.25, 4.0};
  g.count = 7;
  return g;
}

// A float32 tensor of `n` elements and a float64 one of `m`, all `value`.
struct WideModel {
  std::vector<float> x;
  std::vector<double> y;
  int64_t x_shape[1], y_shape[1];
  WideModel(size_t n, size_t m, double value) : x(n, static_cast<float>(value)), y(m, value) {
    x_shape[0] = static_cast<int64_t>(n);
    y_shape[0] = static_cast<int64_t>(m);
  }
  std::vector<flare_named_tensor> tensors() {
    return {view("x", x.data(), {kDLFloat, 32, 1}, x_shape, 1),
            view("y", y.data(), {kDLFloat, 64, 1}, y_shape, 1)};
  }
};

template <class T>
void moments_of(const T* data, size_t n, double centre, double& mean, double& std) {
  double s = 0, s2 = 0;
  for (size_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(data[i]) - centre;
    s += d;
    s2 += d * d;
  }
  mean = s / n;
  std = std::sqrt(s2 / n - mean * mean);
}

}  // namespace

TEST_CASE("an update is clipped to clipping_norm over all float tensors together") {
  Metrics metrics;
  const HostServices host(metrics.callbacks());
  AggregatorInstance agg(dp_plugin(), R"({"clipping_norm": 1, "noise_multiplier": 0})", host);
  SmallModel g = a_global();
  // delta: w [3, 0, 0], b [0, 4]: norm 5 over both tensors, clipped by 1/5 to
  // w [0.6, 0, 0], b [0, 0.8]. No noise: the result is g + the clipped delta.
  SmallModel site = moved(g, {3, 0, 0}, {0, 4}, 99);
  agg.begin_round(0, g.tensors());  // kept until finalize, as a 1.4 host does
  const auto tensors = site.tensors();
  agg.accept(update_of("site-a", 0, tensors, 10));
  const SmallModel out = SmallModel::from(agg.finalize());
  CHECK(out.w[0] == doctest::Approx(0.5 + 0.6).epsilon(1e-7));
  CHECK(out.w[1] == -1.0f);
  CHECK(out.w[2] == 2.0f);
  CHECK(out.b[0] == 0.25);
  CHECK(out.b[1] == doctest::Approx(4.8).epsilon(1e-15));
  // The bound: float32 rounding of the float32 part only (a few 2^-24).
  CHECK(norm_of_difference(out, g) <= 1.0 * (1 + 4e-7));
  CHECK(norm_of_difference(out, g) >= 1.0 * (1 - 4e-7));
  CHECK(out.count == 7);  // integer tensors keep the global model's value
  CHECK(metrics.of("dp_clipped", 0) == 1);
  CHECK(metrics.of("dp_noise_std", 0) == 0);
  CHECK(std::isnan(metrics.of("dp_epsilon", 0)));  // no noise: no finite epsilon to report
}

TEST_CASE("clipped deltas are averaged with equal weights whatever the sample counts") {
  Metrics metrics;
  const HostServices host(metrics.callbacks());
  AggregatorInstance agg(dp_plugin(), R"({"clipping_norm": 2, "noise_multiplier": 0})", host);
  SmallModel g = a_global();
  // a: w [6, 0, 0], b [0, 8]: norm 10, clipped to 2: w [1.2, 0, 0], b [0, 1.6].
  // b: w [0, 0.5, 0], b [-1, 0]: norm 1.118 <= 2, unchanged.
  // c: w [0, 0, 0], b [0, 0]: the global model itself.
  // Mean (1/3 each, although the samples are 10, 1000 and 0: a count of 0,
  // which fedavg refuses, is no reason to refuse here):
  //   w [0.4, 1/6, 0], b [-1/3, 1.6/3].
  SmallModel a = moved(g, {6, 0, 0}, {0, 8}, 1), b = moved(g, {0, 0.5f, 0}, {-1, 0}, 2),
             c = moved(g, {0, 0, 0}, {0, 0}, 3);
  agg.begin_round(3, g.tensors());
  const auto ta = a.tensors(), tb = b.tensors(), tc = c.tensors();
  agg.accept(update_of("a", 3, ta, 10));
  agg.accept(update_of("b", 3, tb, 1000));
  agg.accept(update_of("c", 3, tc, 0));
  const SmallModel out = SmallModel::from(agg.finalize());
  CHECK(out.w[0] == doctest::Approx(0.5 + 0.4).epsilon(1e-6));
  CHECK(out.w[1] == doctest::Approx(-1.0 + 0.5 / 3).epsilon(1e-6));
  CHECK(out.w[2] == 2.0f);
  CHECK(out.b[0] == doctest::Approx(0.25 - 1.0 / 3).epsilon(1e-14));
  CHECK(out.b[1] == doctest::Approx(4.0 + 1.6 / 3).epsilon(1e-14));
  CHECK(metrics.of("dp_clipped", 3) == 1);
}

TEST_CASE("the noise's std is noise_multiplier x clipping_norm / sites, on every element") {
  Metrics metrics;
  const HostServices host(metrics.callbacks());
  // z 1.5, C 2, 3 sites: std 1.0. Sites send the global model itself, so the
  // result less the global model is the noise alone.
  AggregatorInstance agg(dp_plugin(), R"({"clipping_norm": 2, "noise_multiplier": 1.5, "seed": 7})",
                         host);
  const size_t n = 3 * (size_t{1} << 18) + 11, m = 100001;  // several chunks, odd sizes
  WideModel global(n, m, 3.0);
  agg.begin_round(0, global.tensors());
  for (const char* site : {"a", "b", "c"}) agg.accept(update_of(site, 0, global.tensors(), 1));
  const auto result = agg.finalize();
  double mean = 0, std = 0;
  // Standard error of the std over N draws: 1 / sqrt(2N) (0.08% and 0.2%).
  moments_of(static_cast<const float*>(find(result, "x").tensor.data), n, 3.0, mean, std);
  CHECK(std == doctest::Approx(1.0).epsilon(0.005));
  CHECK(std::abs(mean) < 5.0 / std::sqrt(double(n)));
  moments_of(static_cast<const double*>(find(result, "y").tensor.data), m, 3.0, mean, std);
  CHECK(std == doctest::Approx(1.0).epsilon(0.012));
  CHECK(std::abs(mean) < 5.0 / std::sqrt(double(m)));
  CHECK(metrics.of("dp_noise_std", 0) == doctest::Approx(1.0).epsilon(1e-15));

  // Its tails are a normal's: about 4.55% beyond 2 std, 0.27% beyond 3.
  const auto* x = static_cast<const float*>(find(result, "x").tensor.data);
  size_t beyond2 = 0, beyond3 = 0;
  for (size_t i = 0; i < n; ++i) {
    beyond2 += std::abs(x[i] - 3.0) > 2.0;
    beyond3 += std::abs(x[i] - 3.0) > 3.0;
  }
  CHECK(double(beyond2) / n == doctest::Approx(0.0455).epsilon(0.03));
  CHECK(double(beyond3) / n == doctest::Approx(0.0027).epsilon(0.1));
}

TEST_CASE("epsilon is the RDP accountant's, hand-computed") {
  // RDP of T rounds at order a: T a / (2 z^2). Epsilon at delta (Balle et al.
  // 2020): min over the orders of RDP + log((a-1)/a) - (log delta + log a)/(a-1).
  // z 1, delta 1e-5, T 1: order 5.4 is the least: 2.7 + log(4.4/5.4)
  //   - (log 1e-5 + log 5.4) / 4.4 = 2.7 - 0.2047944 + 2.2333014 = 4.7285071.
  // T 3: order 3.6: 5.4 + log(2.6/3.6) - (log 1e-5 + log 3.6)/2.6 = 9.0099590.
  Metrics metrics;
  const HostServices host(metrics.callbacks());
  AggregatorInstance agg(dp_plugin(), R"({"clipping_norm": 1, "noise_multiplier": 1})", host);
  SmallModel g;
  for (int r = 0; r < 3; ++r) {
    agg.begin_round(r, g.tensors());
    const auto t = g.tensors();
    agg.accept(update_of("a", r, t, 1));
    agg.finalize();
  }
  CHECK(metrics.of("dp_epsilon", 0) == doctest::Approx(4.728507067217623).epsilon(1e-12));
  CHECK(metrics.of("dp_epsilon", 2) == doctest::Approx(9.009958991683897).epsilon(1e-12));
  CHECK(metrics.of("dp_epsilon", 1) > metrics.of("dp_epsilon", 0));
  // Never looser than Mironov's conversion at its best order, which for the
  // Gaussian is rho + 2 sqrt(rho log(1/delta)), rho = T / (2 z^2).
  for (int t = 1; t <= 3; ++t) {
    const double rho = t / 2.0;
    CHECK(metrics.of("dp_epsilon", t - 1) < rho + 2 * std::sqrt(rho * std::log(1e5)));
  }

  // z 0.8, delta 1e-6, T 5: order 2.8: 5 x 2.8 / 1.28 + log(1.8/2.8)
  //   - (log 1e-6 + log 2.8) / 1.8 = 17.5989401.
  Metrics other;
  const HostServices host2(other.callbacks());
  AggregatorInstance agg2(
      dp_plugin(), R"({"clipping_norm": 1, "noise_multiplier": 0.8, "target_delta": 1e-6})", host2);
  for (int r = 0; r < 5; ++r) {
    agg2.begin_round(r, g.tensors());
    const auto t = g.tensors();
    agg2.accept(update_of("a", r, t, 1));
    agg2.finalize();
  }
  CHECK(other.of("dp_epsilon", 4) == doctest::Approx(17.59894010371158).epsilon(1e-12));
}

TEST_CASE("a restored state continues with the same noise and the same accountant") {
  const char* config = R"({"clipping_norm": 0.5, "noise_multiplier": 1.1, "seed": 12345})";
  auto run = [](AggregatorInstance& agg, SmallModel g, int r) {
    agg.begin_round(r, g.tensors());
    SmallModel a = moved(g, {1, 2, 3}, {0.1, -0.2}, 1), b = moved(g, {0.01f, 0, 0}, {0, 0}, 2);
    const auto ta = a.tensors(), tb = b.tensors();
    agg.accept(update_of("a", r, ta, 1));
    agg.accept(update_of("b", r, tb, 1));
    return SmallModel::from(agg.finalize());
  };
  Metrics m_whole, m_resumed;
  const HostServices host_whole(m_whole.callbacks()), host_resumed(m_resumed.callbacks());
  AggregatorInstance whole(dp_plugin(), config, host_whole);
  SmallModel x[4];
  for (int r = 0; r < 3; ++r) x[r + 1] = run(whole, x[r], r);

  AggregatorInstance first(dp_plugin(), config, host_resumed);
  const SmallModel y1 = run(first, SmallModel{}, 0);
  OwnedState saved = OwnedState::of(first);
  AggregatorInstance resumed(dp_plugin(), config, host_resumed);
  saved.restore_into(resumed);
  const SmallModel y2 = run(resumed, y1, 1);
  const SmallModel y3 = run(resumed, y2, 2);
  CHECK(y1.same_bits(x[1]));
  CHECK(y2.same_bits(x[2]));
  CHECK(y3.same_bits(x[3]));
  CHECK(m_resumed.of("dp_epsilon", 2) == m_whole.of("dp_epsilon", 2));
  CHECK(nlohmann::json::parse(saved.meta) ==
        nlohmann::json{{"aggregator", "dp_fedavg"}, {"rounds", 1}, {"seed", 12345}});

  // Another seed, or another round, draws other noise.
  AggregatorInstance reseeded(
      dp_plugin(), R"({"clipping_norm": 0.5, "noise_multiplier": 1.1, "seed": 54321})", host_whole);
  CHECK_FALSE(run(reseeded, SmallModel{}, 0).same_bits(x[1]));
  AggregatorInstance later(dp_plugin(), config, host_whole);
  const SmallModel z = run(later, SmallModel{}, 5);
  CHECK(z.w[0] != x[1].w[0]);

  // Without a configured seed the state's seed is taken; a configured one
  // must agree with it.
  AggregatorInstance unseeded(dp_plugin(), R"({"clipping_norm": 0.5, "noise_multiplier": 1.1})",
                              host_whole);
  saved.restore_into(unseeded);
  CHECK(run(unseeded, y1, 1).same_bits(x[2]));
  AggregatorInstance clash(
      dp_plugin(), R"({"clipping_norm": 0.5, "noise_multiplier": 1.1, "seed": 1})", host_whole);
  const auto e = call_error([&] { saved.restore_into(clash); });
  CHECK(e.plugin_message() ==
        "dp_fedavg: state: its seed 12345 differs from option 'seed' 1");
}

TEST_CASE("dp_fedavg refuses a non-finite update, naming the tensor, and it leaves no trace") {
  const HostServices host;
  AggregatorInstance agg(dp_plugin(), R"({"clipping_norm": 10, "noise_multiplier": 0})", host);
  SmallModel g = a_global();
  agg.begin_round(0, g.tensors());
  SmallModel bad = moved(g, {1, 1, 1}, {0, 0}, 0);
  bad.b[1] = std::numeric_limits<double>::infinity();
  const auto tb = bad.tensors();
  const auto e = call_error([&] { agg.accept(update_of("site-x", 0, tb, 1)); });
  CHECK(e.plugin_message() == "site 'site-x': tensor 'b' holds NaN or infinite values");
  SmallModel good = moved(g, {1, 0, 0}, {0, 0}, 0);
  const auto tg = good.tensors();
  agg.accept(update_of("site-y", 0, tg, 1));
  const SmallModel out = SmallModel::from(agg.finalize());
  CHECK(out.w == std::vector<float>{1.5f, -1.0f, 2.0f});  // site-y alone
}

TEST_CASE("dp_fedavg takes whole updates and has state") {
  const HostServices host;
  const AggregatorInstance agg(dp_plugin(), R"({"clipping_norm": 1, "noise_multiplier": 1})", host);
  CHECK_FALSE(agg.folds_chunks());
  CHECK_FALSE(agg.keeps_updates());
  CHECK(agg.has_state());
}

TEST_CASE("dp_fedavg's bad configs are refused naming the option, also by validate_config") {
  const HostServices host;
  struct Bad {
    const char* config;
    const char* message;
  };
  const Bad cases[] = {
      {R"({"noise_multiplier": 1})", "option 'clipping_norm' is required"},
      {R"({"clipping_norm": 1})", "option 'noise_multiplier' is required"},
      {R"({"clipping_norm": 0, "noise_multiplier": 1})",
       "option 'clipping_norm': expected a number > 0, found 0"},
      {R"({"clipping_norm": 1, "noise_multiplier": -1})",
       "option 'noise_multiplier': expected a number >= 0, found -1"},
      {R"({"clipping_norm": 1, "noise_multiplier": 1, "target_delta": 1})",
       "option 'target_delta': expected a number > 0 and < 1, found 1"},
      {R"({"clipping_norm": 1, "noise_multiplier": 1, "seed": -3})",
       "option 'seed': expected an integer from 0 to 9007199254740991, found -3"},
      {R"({"clipping_norm": 1, "noise_multiplier": 1, "weight": "num_samples"})",
       "unknown option 'weight'"},
  };
  for (const Bad& bad : cases) {
    CAPTURE(bad.config);
    auto e = call_error([&] { AggregatorInstance(dp_plugin(), bad.config, host); });
    CHECK(e.code() == FLARE_ERROR_INVALID_ARGUMENT);
    CHECK(contains(e.plugin_message(), bad.message));
    e = call_error([&] { validate_aggregator_config(dp_plugin(), bad.config, host); });
    CHECK(contains(e.plugin_message(), bad.message));
  }
}
