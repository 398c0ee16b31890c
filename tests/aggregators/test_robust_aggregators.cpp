// The shipped robust aggregators (median, trimmed_mean, krum, multi_krum,
// bulyan), each loaded from its .so and driven through the C ABI: small
// hand-computed cases, a poisoned site, the limits on f, and the
// keeps-updates contract (views read at finalize, pages handed back).
#include "plugin_host/plugin_instances.hpp"

#include "robust_fixtures.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include <doctest/doctest.h>

using namespace flare::host;
using namespace flare::testing;

namespace {

const char* const kRobust[] = {"median", "trimmed_mean", "krum", "multi_krum", "bulyan"};

}  // namespace

TEST_CASE("every robust aggregator declares that it keeps updates until finalize") {
  const HostServices host;
  for (const char* name : kRobust) {
    AggregatorInstance agg(robust_plugin(name), "{}", host);
    CHECK_MESSAGE(agg.keeps_updates(), name);
    CHECK_MESSAGE(!agg.folds_chunks(), name);
  }
}

TEST_CASE("median of an odd number of sites is the middle value per coordinate") {
  Sites sites;
  sites.add("a", 1, 30, 0.5, 4);
  sites.add("b", 3, 10, -2.0, 5);
  sites.add("c", 2, 20, 7.0, 6);
  const SmallResult r = run_small("median", "{}", sites);
  CHECK(r.w0 == 2.0f);
  CHECK(r.w1 == 20.0f);
  CHECK(r.b == 0.5);
  CHECK(r.count == 6);  // the latest accepted update's
}

TEST_CASE("median of an even number of sites is the mean of the middle two, ties included") {
  Sites sites;
  sites.add("a", 1, 5, 1.0, 1);
  sites.add("b", 4, 5, 2.0, 2);
  sites.add("c", 2, 5, 2.0, 3);
  sites.add("d", 8, -1, 9.0, 4);
  const SmallResult r = run_small("median", "{}", sites);
  CHECK(r.w0 == 3.0f);  // (2 + 4) / 2
  CHECK(r.w1 == 5.0f);  // (5 + 5) / 2
  CHECK(r.b == 2.0);
  CHECK(r.count == 4);
}

TEST_CASE("trimmed_mean drops floor(beta * n) values from each end and averages the rest") {
  Sites sites;
  sites.add("a", 1, 100, 1.0, 1);
  sites.add("b", 2, 2, 1.0, 2);
  sites.add("c", 3, 2, 2.0, 3);
  sites.add("d", 4, 3, 3.0, 4);
  sites.add("e", -50, 1, 10.0, 5);
  // beta 0.2 (the default), n = 5: one from each end.
  const SmallResult r = run_small("trimmed_mean", "{}", sites);
  CHECK(r.w0 == 2.0f);                                       // (1 + 2 + 3) / 3
  CHECK(r.w1 == doctest::Approx(7.0 / 3.0).epsilon(1e-7));  // (2 + 2 + 3) / 3
  CHECK(r.b == 2.0);                                         // (1 + 2 + 3) / 3
  CHECK(r.count == 5);
  // beta 0.39: still one (floor(1.95)); beta 0: the plain mean.
  CHECK(run_small("trimmed_mean", R"({"beta": 0.39})", sites).w0 == 2.0f);
  CHECK(run_small("trimmed_mean", R"({"beta": 0})", sites).w0 == -8.0f);  // -40 / 5
}

TEST_CASE("trimmed_mean of an even number of sites trims each end") {
  Sites sites;
  sites.add("a", 1, 0, 0.0, 1);
  sites.add("b", 7, 0, 0.0, 1);
  sites.add("c", 3, 0, 0.0, 1);
  sites.add("d", 5, 0, 0.0, 1);
  // beta 0.25, n = 4: drop 1 and 7, keep 3 and 5.
  CHECK(run_small("trimmed_mean", R"({"beta": 0.25})", sites).w0 == 4.0f);
  // beta 0.2, n = 4: floor(0.8) = 0, nothing dropped.
  CHECK(run_small("trimmed_mean", "{}", sites).w0 == 4.0f);
}

namespace {

// Five sites, squared distances (over w and b; every one shifted by 1):
//   AB 1, AC 4, AD 9, AE 300, BC 5, BD 4, BE 281, CD 13, CE 264, DE 249.
// With f = 1 each scores its n - f - 2 = 2 nearest: A 1+4 = 5, B 1+4 = 5,
// C 4+5 = 9, D 4+9 = 13, E 249+264 = 513.
void five_points(Sites& sites, bool b_first = false) {
  if (b_first) sites.add("B", 2, 1, 1.0, 20, 200, 1);
  sites.add("A", 1, 1, 1.0, 10, 100, 1);
  if (!b_first) sites.add("B", 2, 1, 1.0, 20, 200, 1);
  sites.add("C", 1, 3, 1.0, 30, 100, 1);
  sites.add("D", 4, 1, 1.0, 40, 100, 1);
  sites.add("E", 11, 11, 11.0, 50, 100, 1);
}

}  // namespace

TEST_CASE("krum takes the model of the lowest score, the earlier one of equal scores") {
  Sites sites;
  five_points(sites);
  const SmallResult r = run_small("krum", R"({"f": 1})", sites);
  CHECK(r.w0 == 1.0f);  // A: scores 5 like B, and came first
  CHECK(r.w1 == 1.0f);
  CHECK(r.b == 1.0);
  CHECK(r.count == 10);

  Sites reordered;
  five_points(reordered, /*b_first=*/true);
  const SmallResult rb = run_small("krum", R"({"f": 1})", reordered);
  CHECK(rb.w0 == 2.0f);  // now B came first
  CHECK(rb.count == 20);
}

TEST_CASE("multi_krum averages the m best-scored models, weighted by samples by default") {
  Sites sites;
  five_points(sites);
  // m = 3: A, B, C with samples 100 / 200 / 100.
  const SmallResult r = run_small("multi_krum", R"({"f": 1, "m": 3})", sites);
  CHECK(r.w0 == doctest::Approx(1.5).epsilon(1e-7));  // (100 + 400 + 100) / 400
  CHECK(r.w1 == doctest::Approx(1.5).epsilon(1e-7));  // (100 + 200 + 300) / 400
  CHECK(r.b == doctest::Approx(1.0).epsilon(1e-12));
  CHECK(r.count == 10);  // the best-scored update's

  const SmallResult u = run_small("multi_krum", R"({"f": 1, "m": 3, "weight": "uniform"})", sites);
  CHECK(u.w0 == doctest::Approx(4.0 / 3.0).epsilon(1e-7));
  CHECK(u.w1 == doctest::Approx(5.0 / 3.0).epsilon(1e-7));

  // m absent: n - f = 4 (A, B, C, D), uniform: w0 = (1 + 2 + 1 + 4) / 4.
  const SmallResult d = run_small("multi_krum", R"({"f": 1, "weight": "uniform"})", sites);
  CHECK(d.w0 == doctest::Approx(2.0).epsilon(1e-7));
  CHECK(d.w1 == doctest::Approx(1.5).epsilon(1e-7));
}

namespace {

// Seven sites with every coordinate equal to v. Bulyan with f = 1 chooses
// theta = 5 by iterated Krum (hand-computed, scores in units of 3 v^2):
//   7 left, 4 nearest: 3 (23) is best;  6 left, 3 nearest: 4 (29);
//   5 left, 2 nearest: 1 (26);           4 left, 1 nearest: 0 and 6 (36) tie, 0 first;
//   3 left, 1 nearest: 6 and -50 (3136) tie, 6 first.
// Chosen {3, 4, 1, 0, 6}: median 3; the beta = 3 nearest it are 3, 4, 1.
void seven_points(Sites& sites) {
  const float values[] = {0, 1, 3, 4, 6, 100, -50};
  for (float v : values)
    sites.add("v" + std::to_string(static_cast<int>(v)), v, v, v, static_cast<int64_t>(v));
}

}  // namespace

TEST_CASE("bulyan averages per coordinate the values nearest the median of its Krum choices") {
  Sites sites;
  seven_points(sites);
  const SmallResult r = run_small("bulyan", R"({"f": 1})", sites);
  CHECK(r.w0 == doctest::Approx(8.0 / 3.0).epsilon(1e-7));
  CHECK(r.w1 == doctest::Approx(8.0 / 3.0).epsilon(1e-7));
  CHECK(r.b == doctest::Approx(8.0 / 3.0).epsilon(1e-15));
  CHECK(r.count == 3);  // the first chosen update's
}

TEST_CASE("bulyan with f = 0 averages every update") {
  Sites sites;
  sites.add("a", 1, 0, 0.0, 1);
  sites.add("b", 2, 0, 0.0, 1);
  sites.add("c", 6, 0, 0.0, 1);
  CHECK(run_small("bulyan", "{}", sites).w0 == 3.0f);
}

TEST_CASE("with one site of five poisoned the robust aggregators stay near the honest sites") {
  std::mt19937 random(7);
  std::normal_distribution<float> noise(0.0f, 0.01f);
  // Seven sites, one poisoned (x 1e6); bulyan needs n >= 4f + 3 = 7 for
  // f = 1, the others are given the first five (one poisoned of five).
  Sites five, seven;
  for (int k = 0; k < 7; ++k) {
    const float w0 = 1.0f + noise(random), w1 = -2.0f + noise(random);
    const double b = 0.5 + noise(random);
    const float scale = k == 2 ? 1e6f : 1.0f;
    if (k < 5) five.add("s" + std::to_string(k), w0 * scale, w1 * scale, b * scale, k, 100, 1);
    seven.add("s" + std::to_string(k), w0 * scale, w1 * scale, b * scale, k, 100, 1);
  }
  const std::pair<const char*, const char*> robust[] = {
      {"median", "{}"}, {"trimmed_mean", "{}"}, {"krum", R"({"f": 1})"},
      {"multi_krum", R"({"f": 1})"}};
  for (const auto& [name, config] : robust) {
    const SmallResult r = run_small(name, config, five);
    CHECK_MESSAGE(std::abs(r.w0 - 1.0f) < 0.05f, name << " w0 = " << r.w0);
    CHECK_MESSAGE(std::abs(r.w1 + 2.0f) < 0.05f, name << " w1 = " << r.w1);
    CHECK_MESSAGE(std::abs(r.b - 0.5) < 0.05, name << " b = " << r.b);
  }
  const SmallResult bulyan = run_small("bulyan", R"({"f": 1})", seven);
  CHECK(std::abs(bulyan.w0 - 1.0f) < 0.05f);
  CHECK(std::abs(bulyan.b - 0.5) < 0.05);

  // fedavg is pulled ~2e5 away by the one poisoned site.
  const HostServices host;
  AggregatorInstance fedavg(fedavg_plugin(), "{}", host);
  SmallModel global;
  fedavg.begin_round(0, global.tensors());
  five.send_all(fedavg);
  const SmallResult mean = read_small(fedavg.finalize());
  CHECK(std::abs(mean.w0 - 1.0f) > 1e4f);
}

TEST_CASE("krum, multi_krum and bulyan refuse at finalize too few updates for f, naming both") {
  Sites sites;
  five_points(sites);
  const HostServices host;
  const std::tuple<const char*, const char*, const char*> cases[] = {
      {"krum", R"({"f": 2})",
       "krum: option 'f' = 2 needs at least 7 updates (n > 2f + 2), round 0 received 5"},
      {"multi_krum", R"({"f": 2})",
       "multi_krum: option 'f' = 2 needs at least 7 updates (n > 2f + 2), round 0 received 5"},
      {"multi_krum", R"({"m": 6})",
       "multi_krum: option 'm' = 6 needs at least 6 updates (m <= n), round 0 received 5"},
      {"bulyan", R"({"f": 1})",
       "bulyan: option 'f' = 1 needs at least 7 updates (n >= 4f + 3), round 0 received 5"}};
  for (const auto& [name, config, message] : cases) {
    AggregatorInstance agg(robust_plugin(name), config, host);
    SmallModel global;
    agg.begin_round(0, global.tensors());
    sites.send_all(agg);
    const auto e = call_error([&] { agg.finalize(); });
    CHECK(e.code() == FLARE_ERROR_INVALID_ARGUMENT);
    CHECK(e.plugin_message() == message);
  }
}

TEST_CASE("the robust aggregators refuse a config out of range, naming the option") {
  const HostServices host;
  const auto e = call_error(
      [&] { AggregatorInstance agg(robust_plugin("trimmed_mean"), R"({"beta": 0.5})", host); });
  CHECK(e.code() == FLARE_ERROR_INVALID_ARGUMENT);
  CHECK(contains(e.plugin_message(), "option 'beta'"));
  const auto f = call_error(
      [&] { AggregatorInstance agg(robust_plugin("krum"), R"({"f": -1})", host); });
  CHECK(contains(f.plugin_message(), "option 'f'"));
  const auto unknown = call_error(
      [&] { AggregatorInstance agg(robust_plugin("median"), R"({"beta": 0.1})", host); });
  CHECK(contains(unknown.plugin_message(), "beta"));
}

TEST_CASE("under a host older than 1.4 a robust aggregator refuses a non-finite update itself") {
  // A 1.4 host checks every value before accept (plugin_abi.h); an older one
  // does not, and the plugin names the site and tensor, keeping the rest.
  const HostServices host({}, nullptr, FLARE_HOST_SERVICES_SIZE_1_1);
  AggregatorInstance agg(robust_plugin("median"), "{}", host);
  SmallModel global;
  agg.begin_round(0, global.tensors());
  Sites sites;
  sites.add("good", 1, 1, 1.0, 1);
  sites.add("bad", 1, 1, std::nan(""), 1);
  sites.add("good2", 3, 3, 3.0, 1);
  sites.send(agg, 0);
  const auto e = call_error([&] { sites.send(agg, 1); });
  CHECK(e.plugin_message() == "site 'bad': tensor 'b' holds NaN or infinite values");
  sites.send(agg, 2);
  CHECK(read_small(agg.finalize()).w0 == 2.0f);  // (1 + 3) / 2: the refused one is not kept
}

TEST_CASE("a keeps-updates aggregator reads the kept views at finalize, not copies from accept") {
  // The host promises accept's views stay valid and unchanged until
  // finalize; writing through them after accept shows which bytes finalize
  // read: an aggregator that copied at accept would still see the old ones.
  for (const char* name : kRobust) {
    const HostServices host;
    AggregatorInstance agg(robust_plugin(name), "{}", host);
    SmallModel global;
    agg.begin_round(0, global.tensors());
    Sites sites;
    SmallModel& a = sites.add("a", 1, 1, 1.0, 1);
    SmallModel& b = sites.add("b", 1, 1, 1.0, 1);
    SmallModel& c = sites.add("c", 1, 1, 1.0, 1);
    sites.send_all(agg);
    for (SmallModel* m : {&a, &b, &c}) {
      m->weight = {5, 6};
      m->bias = {7};
    }
    // (the vectors kept their size, so their data did not move)
    const SmallResult r = read_small(agg.finalize());
    CHECK_MESSAGE(r.w0 == 5.0f, name);
    CHECK_MESSAGE(r.w1 == 6.0f, name);
    CHECK_MESSAGE(r.b == 7.0, name);
  }
}

namespace {

// A model of two tensors big enough to take several chunks on several
// threads, with a tail that is no whole tile.
struct BigSite {
  std::vector<float> w;
  std::vector<double> b;
  int64_t w_shape[1], b_shape[1];
  std::vector<flare_named_tensor> tensors;
  BigSite(size_t nw, size_t nb, std::mt19937& random) : w(nw), b(nb) {
    std::uniform_int_distribution<int> value(-20, 20);  // small integers: many ties
    for (auto& x : w) x = static_cast<float>(value(random));
    for (auto& x : b) x = value(random) * 0.5;
    w_shape[0] = static_cast<int64_t>(nw);
    b_shape[0] = static_cast<int64_t>(nb);
    tensors = {view("w", w.data(), {kDLFloat, 32, 1}, w_shape, 1),
               view("b", b.data(), {kDLFloat, 64, 1}, b_shape, 1)};
  }
};

struct Range {
  const std::byte* first;
  size_t bytes;
};

}  // namespace

TEST_CASE("a robust aggregator hands back only pages inside the kept views, all once read") {
  constexpr size_t kW = 700'001, kB = 300'007;  // > 2 chunks of 2^18 each
  std::mt19937 random(11);
  std::vector<std::unique_ptr<BigSite>> sites;
  for (int k = 0; k < 7; ++k) sites.push_back(std::make_unique<BigSite>(kW, kB, random));

  for (const auto& [name, config] :
       std::vector<std::pair<std::string, std::string>>{{"median", "{}"},
                                                        {"trimmed_mean", "{}"},
                                                        {"krum", R"({"f": 1})"},
                                                        {"multi_krum", R"({"f": 1})"},
                                                        {"bulyan", R"({"f": 1})"}}) {
    std::mutex mutex;
    std::vector<Range> released;
    HostCallbacks callbacks;
    callbacks.release_pages = [&](const void* data, size_t bytes) {
      const std::lock_guard lock(mutex);
      released.push_back({static_cast<const std::byte*>(data), bytes});
    };
    const HostServices host(callbacks);
    AggregatorInstance agg(robust_plugin(name), config, host);
    BigSite global(kW, kB, random);
    agg.begin_round(0, global.tensors);
    for (size_t k = 0; k < sites.size(); ++k) {
      flare_site_update u{};
      u.struct_size = sizeof(u);
      u.site = "s";
      u.weights = sites[k]->tensors.data();
      u.num_weights = sites[k]->tensors.size();
      u.num_samples = 1;
      u.num_steps = 1;
      agg.accept(u);
    }
    CHECK(released.empty());  // a 1.4 host checked every value: accept reads none
    const auto result = agg.finalize();
    REQUIRE(result.size() == 2);

    // Each range lies inside one kept tensor; mark the bytes it covers.
    std::vector<std::vector<char>> covered_w(sites.size(), std::vector<char>(kW * 4, 0));
    size_t outside = 0;
    for (const Range& r : released) {
      bool inside = false;
      for (size_t k = 0; k < sites.size() && !inside; ++k) {
        const auto* w = reinterpret_cast<const std::byte*>(sites[k]->w.data());
        const auto* b = reinterpret_cast<const std::byte*>(sites[k]->b.data());
        if (r.first >= w && r.first + r.bytes <= w + kW * 4) {
          inside = true;
          std::fill_n(covered_w[k].begin() + (r.first - w), r.bytes, 1);
        } else if (r.first >= b && r.first + r.bytes <= b + kB * 8) {
          inside = true;
        }
      }
      if (!inside) ++outside;
    }
    CHECK_MESSAGE(outside == 0, name << ": " << outside << " of " << released.size()
                                     << " ranges outside the kept views");
    // Every update takes part in the distances or the median: all read, all handed back.
    for (size_t k = 0; k < sites.size(); ++k) {
      const size_t gaps = std::count(covered_w[k].begin(), covered_w[k].end(), 0);
      CHECK_MESSAGE(gaps == 0, name << ": " << gaps << " bytes of update " << k
                                    << " never handed back");
    }
  }
}

TEST_CASE("median and trimmed_mean of a model over many chunks match a per-coordinate sort") {
  constexpr size_t kW = 700'001, kB = 300'007;
  std::mt19937 random(5);
  std::vector<std::unique_ptr<BigSite>> sites;
  for (int k = 0; k < 6; ++k) sites.push_back(std::make_unique<BigSite>(kW, kB, random));
  const HostServices host;
  for (const std::string name : {"median", "trimmed_mean"}) {
    AggregatorInstance agg(robust_plugin(name), R"({})", host);
    BigSite global(kW, kB, random);
    agg.begin_round(0, global.tensors);
    for (const auto& s : sites) {
      flare_site_update u{};
      u.struct_size = sizeof(u);
      u.site = "s";
      u.weights = s->tensors.data();
      u.num_weights = s->tensors.size();
      u.num_samples = 1;
      u.num_steps = 1;
      agg.accept(u);
    }
    const auto result = agg.finalize();
    const auto* w = static_cast<const float*>(find(result, "w").tensor.data);
    const auto* b = static_cast<const double*>(find(result, "b").tensor.data);
    // n = 6: the median is (v[2] + v[3]) / 2; beta 0.2 cuts floor(1.2) = 1 from each end.
    auto expected = [&](auto values) {
      std::sort(values.begin(), values.end());
      using T = typename decltype(values)::value_type;
      if (name == "median") return T(0.5) * values[2] + T(0.5) * values[3];
      T sum = values[1];
      for (size_t k = 2; k < 5; ++k) sum += values[k];
      return sum / T(4);
    };
    size_t wrong = 0;
    for (size_t c = 0; c < kW; ++c) {
      std::vector<float> v;
      for (const auto& s : sites) v.push_back(s->w[c]);
      if (w[c] != expected(v)) ++wrong;
    }
    for (size_t c = 0; c < kB; ++c) {
      std::vector<double> v;
      for (const auto& s : sites) v.push_back(s->b[c]);
      if (b[c] != expected(v)) ++wrong;
    }
    CHECK_MESSAGE(wrong == 0, name << ": " << wrong << " coordinates differ from the sort");
  }
}

TEST_CASE("a robust aggregator's round starts empty, and refuses a late, early or repeated call") {
  const HostServices host;
  AggregatorInstance agg(robust_plugin("median"), "{}", host);
  SmallModel global;
  Sites first, second;
  first.add("a", 100, 100, 100.0, 1);
  second.add("a", 1, 2, 3.0, 4);
  second.add("b", 3, 4, 5.0, 6);

  const auto early = call_error([&] { first.send(agg, 0); });
  CHECK(contains(early.plugin_message(), "update outside a round"));
  agg.begin_round(0, global.tensors());
  CHECK(call_error([&] { agg.finalize(); }).plugin_message() ==
        "median: round 0: no update was accepted, nothing to aggregate");
  first.send(agg, 0);
  CHECK(read_small(agg.finalize()).w0 == 100.0f);
  CHECK(contains(call_error([&] { agg.finalize(); }).plugin_message(), "finalize outside a round"));
  CHECK(contains(call_error([&] { first.send(agg, 0); }).plugin_message(),
                 "update outside a round"));

  agg.begin_round(1, global.tensors());
  const auto stale = call_error([&] { second.send(agg, 0, /*round=*/0); });
  CHECK(stale.plugin_message() == "site 'a': update is for round 0, aggregating round 1");
  second.send_all(agg, 1);
  const SmallResult r = read_small(agg.finalize());  // round 0's update is gone
  CHECK(r.w0 == 2.0f);
  CHECK(r.w1 == 3.0f);
  CHECK(r.b == 4.0);
  CHECK(r.count == 6);
}
