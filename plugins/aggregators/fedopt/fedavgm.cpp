// FedAvgM: FedAvg with server momentum (Hsu, Qi and Brown 2019, "Measuring
// the Effects of Non-Identical Data Distribution for Federated Visual
// Classification"): delta = the weighted mean of the sites' models - the
// global model; m = momentum m + delta; x = global + eta m. Flower's FedAvgM
// (server_learning_rate, server_momentum) computes the same with the sign of
// m flipped. Config (docs/aggregators.md): eta 1.0, momentum 0.9, and
// fedavg's weight / sum.
#include "server_optimizer.hpp"

namespace {

using flare::agg::WeightedMean;
using flare::fedopt::Rule;

class FedAvgM final : public flare::fedopt::ServerOptimizer {
 public:
  static flare::ConfigSchema config_schema() {
    return WeightedMean::add_options({}).number("eta", {0, false}).number("momentum", {0}, {1, false});
  }

  FedAvgM(const nlohmann::json& config, flare::Host host)
      : ServerOptimizer("fedavgm",
                        {.rule = Rule::Momentum,
                         .eta = config.value("eta", 1.0),
                         .beta1 = config.value("momentum", 0.9)},
                        false, WeightedMean::settings_from(config), host) {}
};

}  // namespace

FLARE_AGGREGATOR_PLUGIN(FedAvgM, "fedavgm", "1.0.0",
                        "FedAvg with server momentum (Hsu et al. 2019), folded in as updates arrive")
