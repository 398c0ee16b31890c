// Krum (Blanchard et al. 2017, "Machine Learning with Adversaries: Byzantine
// Tolerant Gradient Descent"; Flower's Krum with num_clients_to_keep = 0):
// assuming up to f byzantine sites, each update's score is the sum of its
// squared distances to its n - f - 2 nearest others, and the next global
// model is the update of lowest score (of equal scores, the earlier one),
// integer tensors included. Config: {"f": 0} (Flower's default
// num_malicious_clients). Needs n > 2f + 2 updates: fewer are refused at
// finalize (Flower does not check).
#include "krum_selection.hpp"
#include "pairwise_distances.hpp"
#include "robust_aggregator.hpp"

namespace {

class Krum final : public robust::RobustAggregator {
 public:
  static flare::ConfigSchema config_schema() { return flare::ConfigSchema().integer("f", 0); }

  Krum(const nlohmann::json& config, flare::Host host)
      : RobustAggregator("krum", host), f_(config.value("f", int64_t{0})) {}

 private:
  void aggregate(robust::ResultModel& result) override {
    const size_t n = round_.updates().size(), f = static_cast<size_t>(f_);
    if (n < 2 * f + 3) refuse_too_few("f", f_, 2 * f + 3, "n > 2f + 2");
    const std::vector<double> distances = robust::pairwise_squared_distances(round_, host_);
    std::vector<size_t> all(n);
    for (size_t k = 0; k < n; ++k) all[k] = k;
    const size_t pick = robust::krum_best({distances, n}, all, f, 1).front();
    host_.info("krum: round " + std::to_string(round_.round()) + " takes the model of " +
               round_.updates()[pick].where + " of " + std::to_string(n));
    robust::copy_update(round_, round_.updates()[pick], result, host_);
  }

  int64_t f_;
};

}  // namespace

FLARE_AGGREGATOR_PLUGIN(Krum, "krum", "1.0.0",
                        "Krum: the site model nearest its n - f - 2 nearest others")
