// The FedOpt family (fedavgm, fedadagrad, fedadam, fedyogi), loaded from
// their .so files and driven through the C ABI: the paper's update rules
// against hand-computed values and a float64 reference over three rounds
// (moments included), state across a restart, streamed updates, refusals.
#include "plugin_host/config_validation.hpp"
#include "plugin_host/plugin_instances.hpp"

#include "server_state_fixtures.hpp"

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

using namespace flare::host;
using namespace flare::testing;

namespace {

LoadedPlugin plugin(const std::string& name) {
  const std::string path = name == "fedavgm"      ? FLARE_FEDAVGM_PLUGIN
                           : name == "fedadagrad" ? FLARE_FEDADAGRAD_PLUGIN
                           : name == "fedadam"    ? FLARE_FEDADAM_PLUGIN
                                                  : FLARE_FEDYOGI_PLUGIN;
  return load_plugin({name, path, {}}, FLARE_PLUGIN_AGGREGATOR);
}

// The rules as Reddi et al. 2021 (Algorithm 2) and Hsu et al. 2019 write
// them, per element in float64, with the plugin's defaults.
struct Reference {
  std::string plugin;
  double eta, beta1, beta2, tau;
  bool bias_correction = false;
  std::vector<double> m, v;
  int steps = 0;

  // Each element of `global` plus its step for pseudo-gradient `delta`.
  std::vector<double> step(const std::vector<double>& global, const std::vector<double>& delta) {
    if (m.empty()) m.assign(delta.size(), 0), v.assign(delta.size(), 0);
    ++steps;
    double lr = eta;
    if (bias_correction)
      lr *= std::sqrt(1 - std::pow(beta2, steps)) / (1 - std::pow(beta1, steps));
    std::vector<double> next(global.size());
    for (size_t i = 0; i < delta.size(); ++i) {
      const double d = delta[i];
      if (plugin == "fedavgm") {
        m[i] = beta1 * m[i] + d;
        next[i] = global[i] + eta * m[i];
        continue;
      }
      m[i] = beta1 * m[i] + (1 - beta1) * d;
      if (plugin == "fedadagrad") v[i] += d * d;
      else if (plugin == "fedadam") v[i] = beta2 * v[i] + (1 - beta2) * d * d;
      else v[i] -= (1 - beta2) * d * d * ((v[i] > d * d) - (v[i] < d * d));
      next[i] = global[i] + lr * m[i] / (std::sqrt(v[i]) + tau);
    }
    return next;
  }
};

Reference defaults(const std::string& name) {
  if (name == "fedavgm") return {name, 1.0, 0.9, 0, 0};
  if (name == "fedadagrad") return {name, 0.1, 0.0, 0, 1e-9};
  if (name == "fedadam") return {name, 0.1, 0.9, 0.99, 1e-9};
  return {name, 0.01, 0.9, 0.99, 1e-3};
}

// Two sites, samples 100 and 300 (weights 1/4, 3/4), moving the global
// model by these amounts in rounds 0, 1 and 2; the weighted mean delta is
// the second column.
//   w (float32): [1,2,3] & [3,2,1] -> [2.5,2,1.5]; [-1,0,1] & [1,0,-1] ->
//                [0.5,0,-0.5]; [2,-2,0] & [2,2,0] -> [2,1,0]
//   b (float64): [1,-1] & [-1,1] -> [-0.5,0.5]; [2,2] & [2,-2] -> [2,-1];
//                [0,4] & [0,0] -> [0,1]
const std::vector<std::vector<float>> kMoveW[2] = {
    {{1, 2, 3}, {-1, 0, 1}, {2, -2, 0}}, {{3, 2, 1}, {1, 0, -1}, {2, 2, 0}}};
const std::vector<std::vector<double>> kMoveB[2] = {{{1, -1}, {2, 2}, {0, 4}},
                                                    {{-1, 1}, {2, -2}, {0, 0}}};
const double kSamples[2] = {100, 300};

// Site k's model in round r, from the global model of that round.
SmallModel site_model(const SmallModel& global, int k, int r) {
  SmallModel s = global;
  for (size_t i = 0; i < 3; ++i) s.w[i] = global.w[i] + kMoveW[k][r][i];
  for (size_t i = 0; i < 2; ++i) s.b[i] = global.b[i] + kMoveB[k][r][i];
  s.count = 10 * r + k;
  return s;
}

// One round through `agg`: begin_round, both sites, finalize.
SmallModel run_round(AggregatorInstance& agg, SmallModel global, int r) {
  agg.begin_round(r, global.tensors());
  SmallModel sites[2] = {site_model(global, 0, r), site_model(global, 1, r)};
  for (int k = 0; k < 2; ++k) {
    const auto tensors = sites[k].tensors();
    agg.accept(update_of(k ? "site-b" : "site-a", r, tensors, kSamples[k]));
  }
  return SmallModel::from(agg.finalize());
}

// The weighted mean delta of round r as the reference sees it: from the
// sites' actual (rounded) values, in float64.
template <class T>
std::vector<double> mean_delta(const std::vector<T>& global, const std::vector<T>& a,
                               const std::vector<T>& b) {
  std::vector<double> d(global.size());
  for (size_t i = 0; i < d.size(); ++i)
    d[i] = (100.0 * a[i] + 300.0 * b[i]) / 400.0 - static_cast<double>(global[i]);
  return d;
}

std::vector<double> as_doubles(const std::vector<float>& x) { return {x.begin(), x.end()}; }

const char* const kRules[] = {"fedavgm", "fedadagrad", "fedadam", "fedyogi"};
// The two ways to take the mean: folded as updates arrive, or at finalize
// over the kept updates with the step fused in block by block.
const char* const kFolds[] = {"as_arrived", "at_finalize"};

// `config` (a JSON object) with "fold" set.
std::string with_fold(const std::string& config, const char* fold) {
  nlohmann::json j = nlohmann::json::parse(config);
  j["fold"] = fold;
  return j.dump();
}

}  // namespace

TEST_CASE("fedadam takes the paper's steps, hand-computed for the first two rounds") {
  const HostServices host;
  AggregatorInstance agg(plugin("fedadam"), "{}", host);
  SmallModel x0;
  // Round 0: delta [2.5, 2, 1.5]; m = 0.1 delta = [.25, .2, .15]; v = 0.01
  // delta^2 = [.0625, .04, .0225]; sqrt(v) = m, so each element moves by eta.
  const SmallModel x1 = run_round(agg, x0, 0);
  CHECK(x1.w[0] == doctest::Approx(0.1).epsilon(1e-6));
  CHECK(x1.w[1] == doctest::Approx(0.1).epsilon(1e-6));
  CHECK(x1.w[2] == doctest::Approx(0.1).epsilon(1e-6));
  // delta -0.5: eta times its sign, less tau's share (0.1 x 1e-9 / 0.05)
  CHECK(x1.b[0] == doctest::Approx(-0.1 * 0.05 / (0.05 + 1e-9)).epsilon(1e-14));
  CHECK(x1.count == 1);  // the latest update's integer
  // Round 1: delta [.5, 0, -.5]; m = 0.9 m + 0.1 delta = [.275, .18, .085];
  // v = 0.99 v + 0.01 delta^2 = [.064375, .0396, .024775];
  // x = 0.1 + 0.1 m / sqrt(v) = [0.2083862, 0.1904534, 0.1540023].
  const SmallModel x2 = run_round(agg, x1, 1);
  CHECK(x2.w[0] == doctest::Approx(0.20838622).epsilon(1e-6));
  CHECK(x2.w[1] == doctest::Approx(0.19045340).epsilon(1e-6));
  CHECK(x2.w[2] == doctest::Approx(0.15400228).epsilon(1e-6));
  // Round 2: delta [2, 1, 0]: m = [.4475, .262, .0765], v = [.10373125,
  // .049204, .02452725], x = [0.3473297, 0.3085673, 0.2028492].
  const SmallModel x3 = run_round(agg, x2, 2);
  CHECK(x3.w[0] == doctest::Approx(0.34732972).epsilon(1e-6));
  CHECK(x3.w[1] == doctest::Approx(0.30856732).epsilon(1e-6));
  CHECK(x3.w[2] == doctest::Approx(0.20284918).epsilon(1e-6));

  // The state holds m and v of round 2 and the step count.
  const auto state = agg.get_state();
  CHECK(nlohmann::json::parse(state.meta_json) ==
        nlohmann::json{{"optimizer", "fedadam"}, {"steps", 3}});
  const auto* m = static_cast<const float*>(find(state.tensors, "m/w").tensor.data);
  const auto* v = static_cast<const float*>(find(state.tensors, "v/w").tensor.data);
  CHECK(m[0] == doctest::Approx(0.4475).epsilon(1e-6));
  CHECK(m[2] == doctest::Approx(0.0765).epsilon(1e-5));
  CHECK(v[0] == doctest::Approx(0.10373125).epsilon(1e-6));
  CHECK(v[1] == doctest::Approx(0.049204).epsilon(1e-6));
  CHECK(find(state.tensors, "v/b").tensor.dtype.bits == 64);
  CHECK(state.tensors.size() == 4);  // m and v of w and b; none of the integer
}

TEST_CASE("fedyogi, fedadagrad and fedavgm: first steps by hand") {
  const HostServices host;
  SmallModel x0;
  SUBCASE("fedyogi: v moves by (1 - beta2) delta^2 toward delta^2") {
    AggregatorInstance agg(plugin("fedyogi"), "{}", host);
    // v = 0 - 0.01 delta^2 sign(0 - delta^2) = [.0625, .04, .0225]; x = 0.01
    // m / (sqrt(v) + 0.001) = 0.01 [.25/.251, .2/.201, .15/.151].
    const SmallModel x1 = run_round(agg, x0, 0);
    CHECK(x1.w[0] == doctest::Approx(0.01 * 0.25 / 0.251).epsilon(1e-6));
    CHECK(x1.w[2] == doctest::Approx(0.01 * 0.15 / 0.151).epsilon(1e-6));
    // Round 1: v = [.0625 + .0025, .04, .0225 + .0025] (delta^2 above v where
    // delta is not 0; at 0, sign +1 and delta^2 = 0 leave v), m = [.275, .18,
    // .085]: x = x1 + 0.01 m / (sqrt(v) + 0.001) = [0.0207044, 0.0189055, 0.0152759].
    const SmallModel x2 = run_round(agg, x1, 1);
    CHECK(x2.w[0] == doctest::Approx(0.0207044).epsilon(1e-5));
    CHECK(x2.w[1] == doctest::Approx(0.01890547).epsilon(1e-5));
    CHECK(x2.w[2] == doctest::Approx(0.01527586).epsilon(1e-5));
  }
  SUBCASE("fedadagrad: m = delta (beta1 0), v sums delta^2") {
    AggregatorInstance agg(plugin("fedadagrad"), "{}", host);
    const SmallModel x1 = run_round(agg, x0, 0);  // 0.1 delta / |delta|
    CHECK(x1.w[0] == doctest::Approx(0.1).epsilon(1e-6));
    CHECK(x1.b[0] == doctest::Approx(-0.1 * 0.5 / (0.5 + 1e-9)).epsilon(1e-14));
    // Round 1: v = [6.25 + .25, 4, 2.25 + .25]: x = 0.1 + 0.1 [.5/sqrt(6.5), 0, -.5/sqrt(2.5)].
    const SmallModel x2 = run_round(agg, x1, 1);
    CHECK(x2.w[0] == doctest::Approx(0.1 + 0.05 / std::sqrt(6.5)).epsilon(1e-6));
    CHECK(x2.w[1] == doctest::Approx(0.1).epsilon(1e-6));
    CHECK(x2.w[2] == doctest::Approx(0.1 - 0.05 / std::sqrt(2.5)).epsilon(1e-6));
  }
  SUBCASE("fedavgm: momentum 0.9 of the deltas, eta 1") {
    AggregatorInstance agg(plugin("fedavgm"), "{}", host);
    const SmallModel x1 = run_round(agg, x0, 0);  // m = delta: the mean itself
    CHECK(x1.w == std::vector<float>{2.5f, 2.0f, 1.5f});
    // Round 1: m = 0.9 [2.5, 2, 1.5] + [.5, 0, -.5] = [2.75, 1.8, .85].
    const SmallModel x2 = run_round(agg, x1, 1);
    CHECK(x2.w[0] == doctest::Approx(2.5 + 2.75).epsilon(1e-6));
    CHECK(x2.w[1] == doctest::Approx(2.0 + 1.8).epsilon(1e-6));
    CHECK(x2.w[2] == doctest::Approx(1.5 + 0.85).epsilon(1e-6));
  }
}

TEST_CASE("every rule equals the float64 reference over three rounds, with non-default settings") {
  for (const char* fold : kFolds)
  for (const char* name : kRules) {
    CAPTURE(fold);
    CAPTURE(name);
    Reference ref = defaults(name);
    // Settings that differ from the defaults, so a plugin ignoring its
    // config fails; bias correction for fedadam.
    std::string config;
    if (ref.plugin == "fedavgm") {
      ref.eta = 0.7, ref.beta1 = 0.5;
      config = R"({"eta": 0.7, "momentum": 0.5})";
    } else if (ref.plugin == "fedadagrad") {
      ref.eta = 0.3, ref.beta1 = 0.4, ref.tau = 0.01;
      config = R"({"eta": 0.3, "beta1": 0.4, "tau": 0.01})";
    } else {
      ref.eta = 0.2, ref.beta1 = 0.8, ref.beta2 = 0.9, ref.tau = 0.005;
      ref.bias_correction = ref.plugin == "fedadam";
      config = std::string(R"({"eta": 0.2, "beta1": 0.8, "beta2": 0.9, "tau": 0.005)") +
               (ref.bias_correction ? R"(, "bias_correction": true})" : "}");
    }
    Reference ref_b = ref;
    const HostServices host;
    AggregatorInstance agg(plugin(name), with_fold(config, fold), host);
    CHECK(agg.keeps_updates() == (std::string(fold) == "at_finalize"));
    SmallModel x;
    std::vector<double> want_w(3, 0.0), want_b(2, 0.0);
    for (int r = 0; r < 3; ++r) {
      const SmallModel a = site_model(x, 0, r), b = site_model(x, 1, r);
      want_w = ref.step(as_doubles(x.w), mean_delta(x.w, a.w, b.w));
      want_b = ref_b.step(x.b, mean_delta(x.b, a.b, b.b));
      x = run_round(agg, x, r);
      for (size_t i = 0; i < 3; ++i) CHECK(x.w[i] == doctest::Approx(want_w[i]).epsilon(2e-6));
      for (size_t i = 0; i < 2; ++i) CHECK(x.b[i] == doctest::Approx(want_b[i]).epsilon(1e-13));
    }
    // The moments across the rounds too.
    const auto state = agg.get_state();
    const std::string m_name = ref.plugin == "fedavgm" ? "momentum/" : "m/";
    const auto* m = static_cast<const float*>(find(state.tensors, m_name + "w").tensor.data);
    const auto* mb = static_cast<const double*>(find(state.tensors, m_name + "b").tensor.data);
    for (size_t i = 0; i < 3; ++i) CHECK(m[i] == doctest::Approx(ref.m[i]).epsilon(2e-6));
    for (size_t i = 0; i < 2; ++i) CHECK(mb[i] == doctest::Approx(ref_b.m[i]).epsilon(1e-13));
    if (ref.plugin != "fedavgm") {
      const auto* v = static_cast<const float*>(find(state.tensors, "v/w").tensor.data);
      for (size_t i = 0; i < 3; ++i) CHECK(v[i] == doctest::Approx(ref.v[i]).epsilon(2e-6));
    }
  }
}

TEST_CASE("each rule steps every element of a model of several chunks as the reference") {
  // Split over threads in chunks of 2^18 elements (and at_finalize's blocks
  // of 4096 within them): a wrong offset anywhere shows. Random deltas of
  // mixed sign; two rounds.
  const size_t n = 3 * (size_t{1} << 18) + 13;
  std::mt19937 rng(5);
  std::normal_distribution<float> value(0.0f, 1.0f);
  std::vector<float> global(n), site[2];
  for (auto& g : global) g = value(rng);
  for (const char* fold : kFolds)
  for (const char* name : kRules) {
    CAPTURE(fold);
    CAPTURE(name);
    Reference ref = defaults(name);
    // tau 0.1: m / (sqrt(v) + tau) of a delta near 0 then does not turn
    // float32's rounding of the delta into a different sign.
    const bool adaptive = ref.plugin != "fedavgm";
    if (adaptive) ref.tau = 0.1;
    const HostServices host;
    AggregatorInstance agg(plugin(name), with_fold(adaptive ? R"({"tau": 0.1})" : "{}", fold), host);
    int64_t shape[1] = {static_cast<int64_t>(n)};
    std::vector<float> x = global;
    for (int r = 0; r < 2; ++r) {
      for (auto& s : site) {
        s.resize(n);
        for (size_t i = 0; i < n; ++i) s[i] = x[i] + value(rng);
      }
      std::vector<double> delta(n);
      for (size_t i = 0; i < n; ++i)
        delta[i] = (100.0 * site[0][i] + 300.0 * site[1][i]) / 400.0 - x[i];
      const auto want = ref.step(as_doubles(x), delta);
      const std::vector<flare_named_tensor> model = {view("x", x.data(), {kDLFloat, 32, 1}, shape, 1)};
      agg.begin_round(r, model);
      for (int k = 0; k < 2; ++k) {
        const std::vector<flare_named_tensor> t = {
            view("x", site[k].data(), {kDLFloat, 32, 1}, shape, 1)};
        agg.accept(update_of("s", r, t, kSamples[k]));
      }
      const auto* got = static_cast<const float*>(agg.finalize()[0].tensor.data);
      size_t off = 0;
      for (size_t i = 0; i < n; ++i)
        if (std::abs(got[i] - want[i]) > 1e-5 * (1 + std::abs(want[i]))) ++off;
      CHECK(off == 0);
      x.assign(got, got + n);
    }
  }
}

TEST_CASE("fedavgm with momentum 0 and eta 1 is fedavg, to float rounding") {
  const HostServices host;
  AggregatorInstance avgm(plugin("fedavgm"), R"({"momentum": 0, "eta": 1})", host);
  AggregatorInstance avg(fedavg_plugin(), "{}", host);
  SmallModel x, y;
  for (int r = 0; r < 3; ++r) {
    x = run_round(avgm, x, r);
    y = run_round(avg, y, r);
    for (size_t i = 0; i < 3; ++i) CHECK(x.w[i] == doctest::Approx(y.w[i]).epsilon(1e-6));
    for (size_t i = 0; i < 2; ++i) CHECK(x.b[i] == doctest::Approx(y.b[i]).epsilon(1e-14));
  }
}

TEST_CASE("a state restored into a fresh aggregator continues bit for bit") {
  for (const char* fold : kFolds)
  for (const char* name : kRules)
    for (const char* base : {"{}", R"({"sum": "compensated", "weight": "uniform"})",
                             R"({"bias_correction": true})"}) {
      if (std::string(base).find("bias") != std::string::npos && std::string(name) != "fedadam")
        continue;  // fedadam's alone: its eta depends on the steps taken
      const std::string config = with_fold(base, fold);
      CAPTURE(name);
      CAPTURE(config);
      const HostServices host;
      // Uninterrupted: rounds 0, 1, 2.
      AggregatorInstance whole(plugin(name), config, host);
      SmallModel x[4];
      for (int r = 0; r < 3; ++r) x[r + 1] = run_round(whole, x[r], r);
      // Stopped after round 0: its state into a fresh aggregator, which
      // takes rounds 1 and 2 from the checkpointed global model.
      AggregatorInstance first(plugin(name), config, host);
      const SmallModel y1 = run_round(first, SmallModel{}, 0);
      OwnedState saved = OwnedState::of(first);
      CHECK(saved.names.size() == (std::string(name) == "fedavgm" ? 2u : 4u));
      AggregatorInstance resumed(plugin(name), config, host);
      saved.restore_into(resumed);
      const SmallModel y2 = run_round(resumed, y1, 1);
      const SmallModel y3 = run_round(resumed, y2, 2);
      CHECK(y1.same_bits(x[1]));
      CHECK(y2.same_bits(x[2]));
      CHECK(y3.same_bits(x[3]));
      // Without the state it would not: the moments matter.
      AggregatorInstance forgetful(plugin(name), config, host);
      CHECK_FALSE(run_round(forgetful, y1, 1).same_bits(x[2]));
    }
}

TEST_CASE("before any step the state holds no moments") {
  const HostServices host;
  AggregatorInstance agg(plugin("fedyogi"), "{}", host);
  CHECK(agg.has_state());
  auto state = agg.get_state();
  CHECK(state.tensors.empty());
  CHECK(nlohmann::json::parse(state.meta_json) ==
        nlohmann::json{{"optimizer", "fedyogi"}, {"steps", 0}});
  SmallModel x;
  agg.begin_round(0, x.tensors());  // a round begun, not finalized: still none
  CHECK(agg.get_state().tensors.empty());
}

TEST_CASE("fedadam folds streamed updates into the same bits as whole ones") {
  const HostServices host;
  AggregatorInstance whole(plugin("fedadam"), "{}", host), streamed(plugin("fedadam"), "{}", host);
  CHECK(streamed.folds_chunks());
  SmallModel x, y;
  for (int r = 0; r < 3; ++r) {
    x = run_round(whole, x, r);
    streamed.begin_round(r, y.tensors());
    SmallModel sites[2] = {site_model(y, 0, r), site_model(y, 1, r)};
    std::vector<flare_named_tensor> views[2] = {sites[0].tensors(), sites[1].tensors()};
    for (uint64_t k = 0; k < 2; ++k) {
      SiteUpdateFields h;
      h.site = k ? "site-b" : "site-a";
      h.round = r;
      h.num_samples = kSamples[k];
      h.num_steps = 1;
      streamed.begin_update(k, h);
    }
    // Interleaved, one element at a time, site b first.
    const size_t sizes[] = {3, 2, 1};
    for (size_t t = 0; t < 3; ++t)
      for (size_t e = 0; e < sizes[t]; ++e)
        for (int k = 1; k >= 0; --k) {
          const flare_named_tensor& v = views[k][t];
          const size_t bytes = (v.tensor.dtype.bits + 7) / 8;
          flare_update_chunk c{};
          c.part = FLARE_UPDATE_WEIGHTS;
          c.tensor_index = t;
          c.tensor = &v;
          c.element_offset = e;
          c.num_elements = 1;
          c.data = static_cast<const std::byte*>(v.tensor.data) + e * bytes;
          streamed.accept_chunk(static_cast<uint64_t>(k), c);
        }
    streamed.end_update(0);
    streamed.end_update(1);
    y = SmallModel::from(streamed.finalize());
    CHECK(y.same_bits(x));
  }
}

TEST_CASE("set_state refuses another optimizer's state and malformed moments, naming them") {
  const HostServices host;
  AggregatorInstance adam(plugin("fedadam"), "{}", host);
  run_round(adam, SmallModel{}, 0);
  OwnedState saved = OwnedState::of(adam);

  AggregatorInstance yogi(plugin("fedyogi"), "{}", host);
  auto e = call_error([&] { saved.restore_into(yogi); });
  CHECK(e.code() == FLARE_ERROR_INVALID_ARGUMENT);
  CHECK(e.plugin_message() == "fedyogi: state: it is the state of optimizer \"fedadam\", not of fedyogi");

  AggregatorInstance avgm(plugin("fedavgm"), "{}", host);
  saved.meta = R"({"optimizer": "fedavgm", "steps": 1})";
  e = call_error([&] { saved.restore_into(avgm); });
  CHECK(contains(e.plugin_message(), "tensor 'm/b' is not one of fedavgm's moments (momentum/<tensor>)"));

  AggregatorInstance other(plugin("fedadam"), "{}", host);
  OwnedState half = OwnedState::of(adam);
  for (size_t i = 0; i < half.names.size(); ++i)
    if (half.names[i] == "v/w") half.names[i] = "v/renamed";
  e = call_error([&] { half.restore_into(other); });
  CHECK(contains(e.plugin_message(), "tensor 'renamed' has no m/ moment"));

  OwnedState no_steps = OwnedState::of(adam);
  no_steps.meta = R"({"optimizer": "fedadam"})";
  e = call_error([&] { no_steps.restore_into(other); });
  CHECK(contains(e.plugin_message(), "has no count of steps"));
}

TEST_CASE("begin_round refuses restored moments that do not fit the model, naming the tensor") {
  const HostServices host;
  AggregatorInstance adam(plugin("fedadam"), "{}", host);
  run_round(adam, SmallModel{}, 0);
  OwnedState saved = OwnedState::of(adam);

  AggregatorInstance resumed(plugin("fedadam"), "{}", host);
  saved.restore_into(resumed);
  SmallModel wider;
  wider.w = {0, 0, 0, 0};
  wider.w_shape[0] = 4;
  auto e = call_error([&] { resumed.begin_round(1, wider.tensors()); });
  CHECK(e.plugin_message() ==
        "fedadam: tensor 'w' is float32 [4] in the global model of round 1, its moments in the "
        "optimizer state are float32 [3]");
  // The refused round takes no updates (it has no moments to step with).
  SmallModel site;
  const auto site_tensors = site.tensors();
  CHECK(call_error([&] { resumed.accept(update_of("site-a", 1, site_tensors, 1)); })
            .plugin_message() == "site 'site-a': update before begin_round");

  SmallModel renamed;
  auto tensors = renamed.tensors();
  tensors[1].name = "bias";
  e = call_error([&] { resumed.begin_round(1, tensors); });
  CHECK(e.plugin_message() ==
        "fedadam: tensor 'bias' of the global model of round 1 has no moments in the optimizer "
        "state");

  tensors.erase(tensors.begin() + 1);  // no 'b' at all: the state's 'b' is left over
  e = call_error([&] { resumed.begin_round(1, tensors); });
  CHECK(e.plugin_message() ==
        "fedadam: the optimizer state holds moments of tensor 'b', which the global model of "
        "round 1 does not have");
  // The fitting model still goes on.
  run_round(resumed, SmallModel{}, 1);
}

TEST_CASE("bad configs are refused, naming the option, also by validate_config") {
  const HostServices host;
  struct Bad {
    const char* plugin;
    const char* config;
    const char* message;
  };
  const Bad cases[] = {
      {"fedadam", R"({"eta": 0})", "option 'eta': expected a number > 0, found 0"},
      {"fedadam", R"({"beta1": 1})", "option 'beta1': expected a number >= 0 and < 1, found 1"},
      {"fedyogi", R"({"beta2": -0.1})", "option 'beta2': expected a number >= 0 and < 1, found -0.1"},
      {"fedyogi", R"({"tau": 0})", "option 'tau': expected a number > 0, found 0"},
      {"fedadagrad", R"({"beta2": 0.9})", "unknown option 'beta2'"},
      {"fedavgm", R"({"momentum": 1.5})", "option 'momentum': expected a number >= 0 and < 1, found 1.5"},
      {"fedavgm", R"({"server_momentum": 0.9})", "unknown option 'server_momentum'"},
      {"fedadam", R"({"bias_correction": 1})", "option 'bias_correction': expected true or false, found 1"},
      {"fedadam", R"({"weight": "loss"})", "option 'weight': expected one of"},
  };
  for (const Bad& bad : cases) {
    CAPTURE(bad.config);
    auto e = call_error([&] { AggregatorInstance(plugin(bad.plugin), bad.config, host); });
    CHECK(e.code() == FLARE_ERROR_INVALID_ARGUMENT);
    CHECK(contains(e.plugin_message(), bad.message));
    e = call_error([&] { validate_aggregator_config(plugin(bad.plugin), bad.config, host); });
    CHECK(contains(e.plugin_message(), bad.message));
  }
  CHECK(validate_aggregator_config(plugin("fedyogi"), R"({"eta": 0.05, "sum": "compensated"})", host));
}

TEST_CASE("the FedOpt plugins are found beside the executable by name") {
  for (const char* name : kRules) {
    const auto p = load_plugin({name, {}, {}}, FLARE_PLUGIN_AGGREGATOR);
    CHECK(std::string(p.descriptor().name) == name);
  }
}

TEST_CASE("under a host older than 1.4 the step starts from a copy of begin_round's model") {
  // A 1.4 host keeps begin_round's model until finalize, and the family
  // steps from those views; an older host lends it for the call only, so
  // overwriting it after begin_round must not move the result.
  const HostServices current;
  const HostServices older({}, nullptr, FLARE_HOST_SERVICES_SIZE_1_1);
  AggregatorInstance kept(plugin("fedavgm"), "{}", current);
  AggregatorInstance copied(plugin("fedavgm"), "{}", older);
  SmallModel x0;
  const SmallModel expected = run_round(kept, x0, 0);

  SmallModel lent = x0;
  copied.begin_round(0, lent.tensors());
  SmallModel sites[2] = {site_model(x0, 0, 0), site_model(x0, 1, 0)};
  lent.w.assign(lent.w.size(), 1000.0f);  // the host reused its buffer
  lent.b.assign(lent.b.size(), 1000.0);
  for (int k = 0; k < 2; ++k) {
    const auto tensors = sites[k].tensors();
    copied.accept(update_of(k ? "site-b" : "site-a", 0, tensors, kSamples[k]));
  }
  const SmallModel out = SmallModel::from(copied.finalize());
  CHECK(out.w == expected.w);
  CHECK(out.b == expected.b);
}

TEST_CASE("at_finalize and as_arrived take the same steps, to float32 rounding of the mean") {
  // The kept mean rounds its sum once more (kept_mean.hpp): within 2^-22 of
  // the folded one; the moments follow it.
  for (const char* name : kRules) {
    CAPTURE(name);
    const HostServices host;
    AggregatorInstance folded(plugin(name), R"({"fold": "as_arrived"})", host);
    AggregatorInstance kept(plugin(name), R"({"fold": "at_finalize"})", host);
    SmallModel x, y;
    for (int r = 0; r < 3; ++r) {
      x = run_round(folded, x, r);
      y = run_round(kept, y, r);
      for (size_t i = 0; i < 3; ++i) CHECK(y.w[i] == doctest::Approx(x.w[i]).epsilon(1e-5));
      for (size_t i = 0; i < 2; ++i) CHECK(y.b[i] == doctest::Approx(x.b[i]).epsilon(1e-13));
      CHECK(y.count == x.count);  // the integer tensor: the latest update's
    }
  }
}

TEST_CASE("at_finalize needs a 1.4 host, which keeps the updates; an older one is refused") {
  const HostServices older({}, nullptr, FLARE_HOST_SERVICES_SIZE_1_1);
  for (const char* name : {"fedadam", "fedavg"}) {
    CAPTURE(name);
    const auto loaded = std::string(name) == "fedavg" ? fedavg_plugin() : plugin(name);
    const auto error = call_error([&] {
      const AggregatorInstance agg(loaded, R"({"fold": "at_finalize"})", older);
    });
    CHECK(contains(error.plugin_message(), "at_finalize"));
    CHECK(contains(error.plugin_message(), "ABI 1.4"));
  }
}

TEST_CASE("at_finalize: a round whose moments do not fit is refused, and so are its updates") {
  const HostServices host;
  AggregatorInstance agg(plugin("fedadam"), R"({"fold": "at_finalize"})", host);
  SmallModel x = run_round(agg, SmallModel{}, 0);
  // Round 1's model lacks tensor "b", whose moments the state holds.
  const auto all = x.tensors();
  const std::vector<flare_named_tensor> only_w = {find(all, "w")};
  CHECK_THROWS(agg.begin_round(1, only_w));
  SmallModel site = site_model(x, 0, 1);
  const auto tensors = site.tensors();
  CHECK_THROWS(agg.accept(update_of("site-a", 1, tensors, 100)));
}
