// Bulyan (El Mhamdi et al. 2018, "The Hidden Vulnerability of Distributed
// Learning in Byzantium"; Flower's Bulyan with Krum as the first rule):
// assuming up to f byzantine sites, theta = n - 2f updates are chosen one by
// one, each the Krum pick (krum.cpp) among those not yet chosen; then each
// coordinate is the mean of the beta = theta - 2f chosen values nearest
// their median (of equally near values the lower is taken; Flower's
// argpartition leaves that to chance). Unweighted. Integer tensors take the
// value of the first chosen update. Config: {"f": 0} (Flower's default).
// Needs n >= 4f + 3 updates: fewer are refused at finalize, as Flower does.
#include "coordinate_rules.hpp"
#include "krum_selection.hpp"
#include "pairwise_distances.hpp"
#include "robust_aggregator.hpp"

namespace {

class Bulyan final : public robust::RobustAggregator {
 public:
  static flare::ConfigSchema config_schema() { return flare::ConfigSchema().integer("f", 0); }

  Bulyan(const nlohmann::json& config, flare::Host host)
      : RobustAggregator("bulyan", host), f_(config.value("f", int64_t{0})) {}

 private:
  void aggregate(robust::ResultModel& result) override {
    const size_t n = round_.updates().size(), f = static_cast<size_t>(f_);
    if (n < 4 * f + 3) refuse_too_few("f", f_, 4 * f + 3, "n >= 4f + 3");
    const std::vector<double> distances = robust::pairwise_squared_distances(round_, host_);
    const std::vector<size_t> chosen = robust::bulyan_selection({distances, n}, f);
    const size_t theta = chosen.size(), beta = theta - 2 * f;
    host_.debug("bulyan: round " + std::to_string(round_.round()) + " chose " +
               std::to_string(theta) + " of " + std::to_string(n) + " (" +
               robust::sites_of(round_, chosen) + "), averaging the " + std::to_string(beta) +
               " values nearest the median per coordinate");
    const robust::CoordinateKernel kernel({robust::Rule::ClosestToMedian, theta, 0, beta});
    robust::apply_coordinatewise(round_, chosen, kernel, result, host_);
    robust::copy_integer_tensors(round_, round_.updates()[chosen.front()], result, host_);
  }

  int64_t f_;
};

}  // namespace

FLARE_AGGREGATOR_PLUGIN(Bulyan, "bulyan", "1.0.0",
                        "Bulyan: iterated Krum, then per coordinate the mean nearest the median")
