// The FedOpt family's aggregator (fedavgm, fedadagrad, fedadam, fedyogi):
// the round's weighted mean is taken as fedavg takes it, folded in as updates
// arrive (WeightedMean, whole or streamed; "fold": "as_arrived", the default)
// or in one pass at finalize over the kept updates (KeptMean; "fold":
// "at_finalize"), and finalize takes one server optimizer step
// (server_step.hpp) from the round's global model on all cores: after the
// fold in a pass of its own, or at finalize block by block as each block of
// the mean is made, while it is in the cache (one pass over everything a
// round must move: the updates, the model, the moments, the result). The moments (m; v but for momentum) live across rounds
// and travel through ABI 1.4's get_state / set_state, so that a server
// resumed from its checkpoint steps exactly as one never stopped.
//
// Memory: the sums or the result (1x the model, 2x compensated sums), the
// moments (1x or 2x); under a host older than ABI 1.4 a copy of the global
// model (1x: such a host lends it for begin_round only).
#pragma once

#include <flare/plugin.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "kept_mean.hpp"
#include "mean_aggregator.hpp"
#include "server_step.hpp"

namespace flare::fedopt {

class ServerOptimizer : public agg::MeanAggregator {
 public:
  // The options of `rule` (docs/aggregators.md): "eta"; "momentum" (FedAvgM)
  // or "beta1"; "beta2" (Adam, Yogi); "tau" (all but FedAvgM);
  // "bias_correction" (Adam); the WeightedMean's "weight" and "sum"; and
  // "fold" ("as_arrived" | "at_finalize").
  static ConfigSchema schema_for(Rule rule);

  // `name` is the plugin's ("fedadam"): in messages and the state's meta.
  // `defaults` holds the rule and the value of each option not in `config`
  // (which has passed schema_for(defaults.rule)). With "bias_correction",
  // round t's eta is eta sqrt(1 - beta2^t) / (1 - beta1^t) (Adam's, Kingma
  // & Ba 2015), t counting steps from 1.
  ServerOptimizer(std::string name, const nlohmann::json& config, const Step& defaults, Host host);

  // The host reads this once after create: a kept round takes whole updates.
  uint64_t instance_properties() const { return kept_ ? FLARE_AGGREGATOR_KEEPS_UPDATES : 0; }

  void begin_round(int64_t round, std::span<const flare_named_tensor> model) override;
  void accept(const flare_site_update& update) override;
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

  // A tensor of the round's model, as the moments see it.
  struct Slot {
    const std::string* name;
    DLDataType dtype;
    const std::vector<int64_t>* shape;
    size_t bytes;
    bool averaged;  // float32 / float64: it has moments
  };

  bool has_second_moment() const { return step_.rule != Rule::Momentum; }
  std::vector<Slot> round_slots();
  void attach_moments();
  Moments& moments_for(const Slot& slot);
  Step step_of_round() const;
  // One step over elements [a, a + n) of tensor i, `result` holding the mean
  // times `scale` and receiving the next global model.
  void step_block(const Step& step, size_t i, size_t a, std::byte* result, const std::byte* global,
                  double scale, size_t n);

  std::string name_;
  Step step_;
  bool bias_correction_;
  Host host_;
  std::unordered_map<std::string, Moments> moments_;  // by model tensor name
  std::vector<Moments*> slot_moments_;  // slot index -> its moments (null: integer tensor)
  std::optional<agg::KeptMean> kept_;   // "fold": "at_finalize"
  std::vector<const std::byte*> kept_globals_;  // kept rounds: the model's views (1.4 host)
  int64_t steps_ = 0;
};

}  // namespace flare::fedopt
