// Multi-Krum (Blanchard et al. 2017; Flower's Krum with num_clients_to_keep
// = m): the m updates of lowest Krum score (krum.cpp) are averaged, weighted
// as fedavg weights (Flower weights by num_examples). Integer tensors take
// the value of the best-scored update.
// Config: {"f": 0, "m": n - f when absent (El Mhamdi et al. 2018's choice;
// Flower's MultiKrum defaults to 1, i.e. Krum), "weight": "num_samples" |
// "num_steps" | "uniform"}.
// Needs n > 2f + 2 updates and m <= n: otherwise refused at finalize.
#include "krum_selection.hpp"
#include "pairwise_distances.hpp"
#include "robust_aggregator.hpp"

#include <algorithm>
#include <cmath>

#include "flat_math.hpp"
#include "parallel_chunks.hpp"

namespace {

namespace one_thread = flare::agg::one_thread;

class MultiKrum final : public robust::RobustAggregator {
 public:
  static flare::ConfigSchema config_schema() {
    return flare::ConfigSchema()
        .integer("f", 0)
        .integer("m", 1)
        .choice("weight", {"num_samples", "num_steps", "uniform"});
  }

  MultiKrum(const nlohmann::json& config, flare::Host host)
      : RobustAggregator("multi_krum", host),
        f_(config.value("f", int64_t{0})),
        m_(config.value("m", int64_t{0})),
        weight_(config.value("weight", "num_samples")) {}

  void accept(const flare_site_update& update) override {
    const double w = weight_of(update);
    if (!std::isfinite(w) || w <= 0)
      throw flare::Error(FLARE_ERROR_INVALID_ARGUMENT,
                         std::string("site '") + (update.site ? update.site : "<unnamed>") +
                             "': weight " + weight_ + " = " + std::to_string(w) +
                             " must be finite and > 0");
    RobustAggregator::accept(update);
  }

 private:
  double weight_of(double num_samples, int64_t num_steps) const {
    if (weight_ == "num_steps") return static_cast<double>(num_steps);
    if (weight_ == "uniform") return 1.0;
    return num_samples;
  }
  double weight_of(const flare_site_update& u) const {
    return weight_of(u.num_samples, u.num_steps);
  }
  double weight_of(const robust::KeptUpdate& u) const {
    return weight_of(u.num_samples, u.num_steps);
  }

  void aggregate(robust::ResultModel& result) override {
    const auto updates = round_.updates();
    const size_t n = updates.size(), f = static_cast<size_t>(f_);
    if (n < 2 * f + 3) refuse_too_few("f", f_, 2 * f + 3, "n > 2f + 2");
    const size_t m = m_ > 0 ? static_cast<size_t>(m_) : n - f;
    if (m > n) refuse_too_few("m", m_, m, "m <= n");
    const std::vector<double> distances = robust::pairwise_squared_distances(round_, host_);
    std::vector<size_t> all(n);
    for (size_t k = 0; k < n; ++k) all[k] = k;
    const std::vector<size_t> best = robust::krum_best({distances, n}, all, f, m);
    host_.debug("multi_krum: round " + std::to_string(round_.round()) + " averages " +
               std::to_string(m) + " of " + std::to_string(n) + ": " +
               robust::sites_of(round_, best));
    average(best, result);
    robust::copy_integer_tensors(round_, updates[best.front()], result, host_);
  }

  // The weighted mean of the chosen updates, chunk by chunk on all cores,
  // each chunk in blocks that keep their sum in L1 while every chosen
  // update is folded into it (a whole chunk's sum, 1 MiB, went to and from
  // L2 once per update): plain float32 sums for float32 tensors (fedavg's
  // default; bound in flat_math.hpp), double for float64.
  void average(const std::vector<size_t>& chosen, robust::ResultModel& result) {
    const auto updates = round_.updates();
    const auto tensors = round_.tensors();
    double total = 0;
    for (size_t k : chosen) total += weight_of(updates[k]);
    flare::agg::for_each_chunk_of(
        round_.aggregated_sizes(),
        [&](size_t i, size_t a, size_t b) {
          if (tensors[i].element_bytes == sizeof(float))
            average_chunk<float>(chosen, i, a, b, 1.0 / total, result);
          else
            average_chunk<double>(chosen, i, a, b, 1.0 / total, result);
          robust::release_elements(round_, i, a, b, host_, chosen);
        },
        flare::agg::max_threads());
  }

  template <class T>
  void average_chunk(const std::vector<size_t>& chosen, size_t tensor, size_t a, size_t b,
                     double scale, robust::ResultModel& result) const {
    constexpr size_t kBlock = 16384 / sizeof(T);
    const auto updates = round_.updates();
    auto* out = reinterpret_cast<T*>(result.data(tensor));
    for (size_t first = a; first < b; first += kBlock) {
      const size_t count = std::min(kBlock, b - first);
      for (size_t c = 0; c < chosen.size(); ++c) {
        const auto* x = reinterpret_cast<const T*>(updates[chosen[c]].data[tensor]) + first;
        const double w = weight_of(updates[chosen[c]]);
        if (c == 0)
          one_thread::fold_first(out + first, x, w, count);
        else
          one_thread::fold(out + first, x, w, count);
      }
      if constexpr (sizeof(T) == sizeof(float))
        one_thread::finish(out + first, scale, count);
      else
        one_thread::finish(out + first, out + first, scale, count);
    }
  }

  int64_t f_, m_;
  std::string weight_;
};

}  // namespace

FLARE_AGGREGATOR_PLUGIN(MultiKrum, "multi_krum", "1.0.0",
                        "Multi-Krum: the weighted mean of the m site models of best Krum score")
