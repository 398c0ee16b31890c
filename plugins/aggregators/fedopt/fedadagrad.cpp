// FedAdagrad (Reddi et al. 2021, "Adaptive Federated Optimization", Algorithm
// 2): Adagrad on the server, the second moment the sum of every round's
// delta^2 (server_step.hpp). Defaults Flower's FedAdagrad: eta 0.1, tau
// 1e-9, beta1 0 (m is the round's delta; the paper allows momentum).
// Config: docs/aggregators.md.
#include "server_optimizer.hpp"

namespace {

using flare::fedopt::Rule;

class FedAdagrad final : public flare::fedopt::ServerOptimizer {
 public:
  static flare::ConfigSchema config_schema() { return schema_for(Rule::Adagrad); }

  FedAdagrad(const nlohmann::json& config, flare::Host host)
      : ServerOptimizer("fedadagrad", config,
                        {.rule = Rule::Adagrad,
                         .eta = 0.1, .beta1 = 0.0, .tau = 1e-9}, host) {}
};

}  // namespace

FLARE_AGGREGATOR_PLUGIN(FedAdagrad, "fedadagrad", "1.0.0",
                        "FedAdagrad: Adagrad on the server (Reddi et al. 2021), folded in "
                        "as updates arrive")
