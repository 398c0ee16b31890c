// FedAdam (Reddi et al. 2021, "Adaptive Federated Optimization", Algorithm
// 2): Adam on the server, the pseudo-gradient being the weighted mean of the
// sites' models less the global model (server_step.hpp). Defaults those of
// the paper's experiments and Flower's FedAdam: eta 0.1, beta1 0.9, beta2
// 0.99, tau 1e-9; bias_correction (default false, as the paper) scales eta
// as Adam does. Config: docs/aggregators.md.
#include "server_optimizer.hpp"

namespace {

using flare::fedopt::Rule;

class FedAdam final : public flare::fedopt::ServerOptimizer {
 public:
  static flare::ConfigSchema config_schema() { return schema_for(Rule::Adam); }

  FedAdam(const nlohmann::json& config, flare::Host host)
      : ServerOptimizer("fedadam", config,
                        {.rule = Rule::Adam,
                         .eta = 0.1, .beta1 = 0.9, .beta2 = 0.99, .tau = 1e-9}, host) {}
};

}  // namespace

FLARE_AGGREGATOR_PLUGIN(FedAdam, "fedadam", "1.0.0",
                        "FedAdam: Adam on the server (Reddi et al. 2021), folded in "
                        "as updates arrive")
