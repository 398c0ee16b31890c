// Coordinate-wise median (Yin et al. 2018, "Byzantine-Robust Distributed
// Learning: Towards Optimal Statistical Rates"; Flower's FedMedian): each
// coordinate of the next global model is the median of the sites' values,
// the mean of the middle two for an even number of sites, as np.median.
// Unweighted. Config: none. Integer tensors take the value of the latest
// accepted update (as fedavg).
#include "coordinate_rules.hpp"
#include "robust_aggregator.hpp"

namespace {

class Median final : public robust::RobustAggregator {
 public:
  static flare::ConfigSchema config_schema() { return flare::ConfigSchema(); }

  Median(const nlohmann::json&, flare::Host host) : RobustAggregator("median", host) {}

 private:
  void aggregate(robust::ResultModel& result) override {
    const auto updates = round_.updates();
    const robust::CoordinateKernel kernel({robust::Rule::Median, updates.size()});
    robust::apply_coordinatewise(round_, {}, kernel, result, host_);
    robust::copy_integer_tensors(round_, updates.back(), result, host_);
  }
};

}  // namespace

FLARE_AGGREGATOR_PLUGIN(Median, "median", "1.0.0",
                        "Coordinate-wise median of the sites' models (robust to outliers)")
