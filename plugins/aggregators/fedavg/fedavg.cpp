// FedAvg: the next global model is the average of the sites' models, weighted
// by each site's amount of local work (McMahan et al. 2017), folded in as
// updates arrive: the WeightedMean of common/ and nothing else.
//
// Config: {"weight": "num_samples" (default) | "num_steps" | "uniform",
//          "sum": "float32" (default) | "compensated"}; what each means, and
// what an update must hold, is in common/weighted_mean.hpp.
#include <flare/plugin.hpp>

#include "mean_aggregator.hpp"

namespace {

using flare::agg::WeightedMean;

class FedAvg final : public flare::agg::MeanAggregator {
 public:
  static flare::ConfigSchema config_schema() { return WeightedMean::add_options({}); }

  FedAvg(const nlohmann::json& config, flare::Host host)
      : MeanAggregator("fedavg", WeightedMean::settings_from(config), host) {}

  // Finished in place: the round is over, the sums become the result.
  std::vector<flare_named_tensor> finalize() override {
    mean_.finish_mean(mean_.close_round());
    return mean_.result_views();
  }
};

}  // namespace

FLARE_AGGREGATOR_PLUGIN(FedAvg, "fedavg", "1.0.0",
                        "FedAvg weighted by local work, folded in as updates arrive")
