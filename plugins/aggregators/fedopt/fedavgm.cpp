// FedAvgM: FedAvg with server momentum (Hsu, Qi and Brown 2019, "Measuring
// the Effects of Non-Identical Data Distribution for Federated Visual
// Classification"): delta = the weighted mean of the sites' models - the
// global model; m = momentum m + delta; x = global + eta m. Flower's FedAvgM
// (server_learning_rate, server_momentum) computes the same with the sign of
// m flipped. Config (docs/aggregators.md): eta 1.0, momentum 0.9, and
// fedavg's weight / sum.
#include "server_optimizer.hpp"

namespace {

using flare::fedopt::Rule;

class FedAvgM final : public flare::fedopt::ServerOptimizer {
 public:
  static flare::ConfigSchema config_schema() { return schema_for(Rule::Momentum); }

  FedAvgM(const nlohmann::json& config, flare::Host host)
      : ServerOptimizer("fedavgm", config,
                        {.rule = Rule::Momentum,
                         .eta = 1.0, .beta1 = 0.9}, host) {}
};

}  // namespace

FLARE_AGGREGATOR_PLUGIN(FedAvgM, "fedavgm", "1.0.0",
                        "FedAvg with server momentum (Hsu et al. 2019), folded in "
                        "as updates arrive")
