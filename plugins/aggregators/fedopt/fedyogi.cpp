// FedYogi (Reddi et al. 2021, "Adaptive Federated Optimization", Algorithm
// 2): Yogi on the server, whose second moment moves by (1 - beta2) delta^2
// toward delta^2 rather than decaying geometrically (server_step.hpp).
// Defaults Flower's FedYogi: eta 0.01, beta1 0.9, beta2 0.99, tau 1e-3.
// Config: docs/aggregators.md.
#include "server_optimizer.hpp"

namespace {

using flare::fedopt::Rule;

class FedYogi final : public flare::fedopt::ServerOptimizer {
 public:
  static flare::ConfigSchema config_schema() { return schema_for(Rule::Yogi); }

  FedYogi(const nlohmann::json& config, flare::Host host)
      : ServerOptimizer("fedyogi", config,
                        {.rule = Rule::Yogi,
                         .eta = 0.01, .beta1 = 0.9, .beta2 = 0.99, .tau = 1e-3}, host) {}
};

}  // namespace

FLARE_AGGREGATOR_PLUGIN(FedYogi, "fedyogi", "1.0.0",
                        "FedYogi: Yogi on the server (Reddi et al. 2021), folded in "
                        "as updates arrive")
