// Coordinate-wise trimmed mean (Yin et al. 2018; Flower's FedTrimmedAvg):
// per coordinate, the floor(beta * n) largest and as many smallest of the n
// sites' values are dropped and the rest averaged, unweighted.
// Config: {"beta": 0.2} (Flower's default), 0 <= beta < 0.5 (0: the plain
// mean). Integer tensors take the value of the latest accepted update.
#include "coordinate_rules.hpp"
#include "robust_aggregator.hpp"

#include <cmath>

namespace {

class TrimmedMean final : public robust::RobustAggregator {
 public:
  static flare::ConfigSchema config_schema() {
    return flare::ConfigSchema().number("beta", {0}, {0.5, false});
  }

  TrimmedMean(const nlohmann::json& config, flare::Host host)
      : RobustAggregator("trimmed_mean", host), beta_(config.value("beta", 0.2)) {}

 private:
  void aggregate(robust::ResultModel& result) override {
    const auto updates = round_.updates();
    const size_t n = updates.size();
    // beta < 0.5 leaves at least one value: 2 * floor(beta * n) < n.
    const auto cut = static_cast<size_t>(std::floor(beta_ * static_cast<double>(n)));
    const robust::CoordinateKernel kernel({robust::Rule::TrimmedMean, n, cut});
    host_.debug("trimmed_mean: round " + std::to_string(round_.round()) + ": dropping " +
                std::to_string(cut) + " of " + std::to_string(n) + " values from each end");
    robust::apply_coordinatewise(round_, {}, kernel, result, host_);
    robust::copy_integer_tensors(round_, updates.back(), result, host_);
  }

  double beta_;
};

}  // namespace

FLARE_AGGREGATOR_PLUGIN(TrimmedMean, "trimmed_mean", "1.0.0",
                        "Coordinate-wise trimmed mean of the sites' models (beta from each end)")
