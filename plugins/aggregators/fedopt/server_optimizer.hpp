// The FedOpt family's aggregator (fedavgm, fedadagrad, fedadam, fedyogi):
// updates are folded into the weighted mean as they arrive (WeightedMean,
// whole or streamed, exactly as fedavg), and finalize takes one server
// optimizer step (server_step.hpp) from the round's global model, in one
// pass on all cores. The moments (m; v but for momentum) live across rounds
// and travel through ABI 1.4's get_state / set_state, so that a server
// resumed from its checkpoint steps exactly as one never stopped.
//
// Memory: the sums (1x the model, 2x compensated), the global model's copy
// (1x: the host lends it for begin_round only) and the moments (1x or 2x).
#pragma once

#include <flare/plugin.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "mean_aggregator.hpp"
#include "server_step.hpp"

namespace flare::fedopt {

class ServerOptimizer : public agg::MeanAggregator {
 public:
  // The options of `rule` (docs/aggregators.md): "eta"; "momentum" (FedAvgM)
  // or "beta1"; "beta2" (Adam, Yogi); "tau" (all but FedAvgM);
  // "bias_correction" (Adam); and the WeightedMean's "weight" and "sum".
  static ConfigSchema schema_for(Rule rule);

  // `name` is the plugin's ("fedadam"): in messages and the state's meta.
  // `defaults` holds the rule and the value of each option not in `config`
  // (which has passed schema_for(defaults.rule)). With "bias_correction",
  // round t's eta is eta sqrt(1 - beta2^t) / (1 - beta1^t) (Adam's, Kingma
  // & Ba 2015), t counting steps from 1.
  ServerOptimizer(std::string name, const nlohmann::json& config, const Step& defaults, Host host);

  void begin_round(int64_t round, std::span<const flare_named_tensor> model) override;
  std::vector<flare_named_tensor> finalize() override;

  // Tensors "m/<name>" (and "v/<name>") per float tensor of the model once a
  // step was taken; meta {"optimizer": name, "steps": steps taken}.
  AggregatorState state() override;
  // Refuses another optimizer's state, an unknown or unpaired tensor and a
  // dtype that is not float32/float64; begin_round then refuses moments that
  // do not fit the model, naming the tensor.
  void set_state(std::span<const flare_named_tensor> tensors, const nlohmann::json& meta) override;

 private:
  struct Moments {
    DLDataType dtype{};
    std::vector<int64_t> shape;
    std::vector<std::byte> m, v;  // v empty for momentum
    std::string m_name, v_name;   // the state's tensor names
  };

  bool has_second_moment() const { return step_.rule != Rule::Momentum; }
  void attach_moments();
  Moments& moments_for(const agg::TensorSum& slot);
  Step step_of_round() const;

  std::string name_;
  Step step_;
  bool bias_correction_;
  Host host_;
  std::unordered_map<std::string, Moments> moments_;  // by model tensor name
  std::vector<Moments*> slot_moments_;  // slot index -> its moments (null: integer tensor)
  int64_t steps_ = 0;
};

}  // namespace flare::fedopt
