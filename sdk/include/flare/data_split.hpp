// How a job splits a training pool across its sites: IID (near-equal random
// shards) or label-skewed by a Dirichlet(alpha) distribution, as NVFlare's
// CIFAR-10 experiments do (after FedMA's partition_data). Plain C++ with its
// own generator, so a seed gives the same split on every platform, compiler and
// LibTorch version. Header-only; part of the C++ SDK.
#pragma once

#include <flare/error.hpp>
#include <flare/plugin_abi.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>
#include <random>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace flare {

// The job's [data] split, as the host hands it to a trainer (WorkerInfo::data).
struct DataSplitSpec {
  enum class Kind { Iid, Dirichlet };
  Kind kind = Kind::Iid;
  double alpha = 0.5;  // Dirichlet concentration: small = few classes per site

  // {"split": "iid" | "dirichlet", "alpha": 0.5}; absent keys keep the defaults.
  static DataSplitSpec from_json(const nlohmann::json& data) {
    DataSplitSpec spec;
    if (!data.is_object()) return spec;
    const std::string split = data.value("split", "iid");
    if (split == "dirichlet") spec.kind = Kind::Dirichlet;
    else if (split != "iid")
      throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                  "data.split: expected \"iid\" or \"dirichlet\", found \"" + split + "\"");
    spec.alpha = data.value("alpha", spec.alpha);
    if (!(spec.alpha > 0) || !std::isfinite(spec.alpha))
      throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                  "data.alpha: expected a finite number > 0, found " + std::to_string(spec.alpha));
    return spec;
  }
};

namespace split_detail {

// Every draw from mt19937_64's output, which the standard fixes, and formulas
// of our own: std's distributions differ between library implementations.
class Random {
 public:
  explicit Random(uint64_t seed) : engine_(seed) {}
  double uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }  // [0, 1)
  uint64_t below(uint64_t n) { return static_cast<uint64_t>(uniform() * static_cast<double>(n)); }
  double normal() {  // Box-Muller
    const double u = 1.0 - uniform(), v = uniform();
    return std::sqrt(-2.0 * std::log(u)) * std::cos(2.0 * std::numbers::pi * v);
  }
  // log of a Gamma(a) draw: below 1 via Gamma(a + 1) * U^(1/a), in logs,
  // where U^(1/a) would underflow to 0 for a small a.
  double log_gamma(double a) {
    if (a < 1.0) return std::log(gamma(a + 1.0)) + std::log(1.0 - uniform()) / a;
    return std::log(gamma(a));
  }
  // Marsaglia and Tsang, a >= 1.
  double gamma(double a) {
    const double d = a - 1.0 / 3.0, c = 1.0 / std::sqrt(9.0 * d);
    for (;;) {
      double x, v;
      do {
        x = normal();
        v = 1.0 + c * x;
      } while (v <= 0);
      v = v * v * v;
      const double u = 1.0 - uniform();
      if (std::log(u) < 0.5 * x * x + d - d * v + d * std::log(v)) return d * v;
    }
  }
  template <class T>
  void shuffle(std::vector<T>& items) {  // Fisher-Yates
    for (size_t i = items.size(); i > 1; --i) std::swap(items[i - 1], items[below(i)]);
  }

 private:
  std::mt19937_64 engine_;
};

}  // namespace split_detail

// The sample indices of each of `num_sites` sites, label-skewed: for each
// class, its samples (shuffled) are cut among the sites in proportions drawn
// from Dirichlet(alpha, ..., alpha), a site already holding its 1/num_sites
// share getting no more; repeated until every site holds at least
// min(10, n / num_sites) samples (NVFlare's and FedMA's rule). Every sample goes
// to exactly one site; each site's list is shuffled. Labels are >= 0.
inline std::vector<std::vector<int64_t>> dirichlet_split(std::span<const int64_t> labels,
                                                         int num_sites, double alpha,
                                                         uint64_t seed) {
  if (num_sites < 1) throw Error(FLARE_ERROR_INVALID_ARGUMENT, "dirichlet split: no sites");
  int64_t num_classes = 0;
  for (const int64_t y : labels) {
    if (y < 0) throw Error(FLARE_ERROR_INVALID_ARGUMENT, "dirichlet split: a negative label");
    num_classes = std::max(num_classes, y + 1);
  }
  std::vector<std::vector<int64_t>> of_class(static_cast<size_t>(num_classes));
  for (size_t i = 0; i < labels.size(); ++i)
    of_class[static_cast<size_t>(labels[i])].push_back(static_cast<int64_t>(i));
  const auto n = static_cast<double>(labels.size());
  const auto sites = static_cast<size_t>(num_sites);
  const size_t least = std::min<size_t>(10, labels.size() / sites);
  constexpr int kAttempts = 1000;
  split_detail::Random random(seed);
  std::vector<std::vector<int64_t>> out;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    out.assign(sites, {});
    for (std::vector<int64_t>& members : of_class) {
      random.shuffle(members);
      // Dirichlet draws for every site (Gamma draws normalised by their sum,
      // scaled by the largest in logs), zeroed for the sites already holding
      // their share.
      std::vector<double> share(sites);
      std::vector<bool> full(sites);
      double largest = -std::numeric_limits<double>::infinity();
      for (size_t s = 0; s < sites; ++s) {
        share[s] = random.log_gamma(alpha);
        full[s] = static_cast<double>(out[s].size()) >= n / num_sites;
        if (!full[s]) largest = std::max(largest, share[s]);
      }
      double total = 0;
      for (size_t s = 0; s < sites; ++s) {
        share[s] = full[s] ? 0.0 : std::exp(share[s] - largest);
        total += share[s];
      }
      if (!(total > 0)) share.assign(sites, 1.0), total = static_cast<double>(sites);
      // Site s takes [floor(P(s - 1) * m), floor(P(s) * m)) of the m members,
      // P the cumulative proportion; the last site takes the rest.
      size_t begin = 0;
      double cumulative = 0;
      for (size_t s = 0; s < sites; ++s) {
        cumulative += share[s] / total;
        const size_t end =
            s + 1 == sites ? members.size()
                           : std::clamp(static_cast<size_t>(cumulative *
                                                            static_cast<double>(members.size())),
                                        begin, members.size());
        out[s].insert(out[s].end(), members.begin() + static_cast<std::ptrdiff_t>(begin),
                      members.begin() + static_cast<std::ptrdiff_t>(end));
        begin = end;
      }
    }
    const bool enough = std::all_of(out.begin(), out.end(),
                                    [&](const auto& site) { return site.size() >= least; });
    if (enough) {
      for (auto& site : out) random.shuffle(site);
      return out;
    }
  }
  throw Error(FLARE_ERROR_INVALID_ARGUMENT,
              "data.alpha = " + std::to_string(alpha) + ": no Dirichlet split of " +
                  std::to_string(labels.size()) + " samples over " + std::to_string(num_sites) +
                  " sites gave each site " + std::to_string(least) + " samples in " +
                  std::to_string(kAttempts) + " draws; use a larger alpha or fewer sites");
}

// How many samples of each class `indices` holds (classes 0 .. num_classes - 1).
inline std::vector<int64_t> label_histogram(std::span<const int64_t> labels,
                                            std::span<const int64_t> indices,
                                            int64_t num_classes) {
  std::vector<int64_t> counts(static_cast<size_t>(num_classes), 0);
  for (const int64_t i : indices) {
    const int64_t y = labels[static_cast<size_t>(i)];
    if (y >= 0 && y < num_classes) ++counts[static_cast<size_t>(y)];
  }
  return counts;
}

}  // namespace flare
