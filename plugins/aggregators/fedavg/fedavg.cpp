// FedAvg: the next global model is the average of the sites' models, weighted
// by each site's amount of local work (McMahan et al. 2017).
//
// Config: {"weight": "num_samples" (default) | "num_steps" | "uniform",
//          "sum": "float32" (default) | "compensated",
//          "fold": "as_arrived" (default) | "at_finalize"}.
// "as_arrived" folds each update in as it arrives, whole or streamed (the
// WeightedMean of common/): the fold overlaps the transfers. "at_finalize"
// keeps every update until finalize (FLARE_AGGREGATOR_KEEPS_UPDATES, in the
// host's spill files) and averages them there in one pass at memory speed
// (KeptMean, kept_mean.hpp). What each option means, and what an update must
// hold, is in common/weighted_mean.hpp.
#include <flare/plugin.hpp>

#include <optional>

#include "kept_mean.hpp"
#include "mean_aggregator.hpp"

namespace {

using flare::agg::KeptMean;
using flare::agg::WeightedMean;

class FedAvg final : public flare::agg::MeanAggregator {
 public:
  static flare::ConfigSchema config_schema() {
    return WeightedMean::add_options({}).choice("fold", {"as_arrived", "at_finalize"});
  }

  FedAvg(const nlohmann::json& config, flare::Host host)
      : MeanAggregator("fedavg", WeightedMean::settings_from(config), host) {
    if (config.value("fold", "as_arrived") == "at_finalize")
      kept_.emplace("fedavg", WeightedMean::settings_from(config), host);
  }

  // The host reads this once after create: a kept round takes whole updates.
  uint64_t instance_properties() const { return kept_ ? FLARE_AGGREGATOR_KEEPS_UPDATES : 0; }

  void begin_round(int64_t round, std::span<const flare_named_tensor> model) override {
    if (kept_) kept_->begin_round(round, model);
    else MeanAggregator::begin_round(round, model);
  }
  void accept(const flare_site_update& update) override {
    if (kept_) kept_->accept(update);
    else MeanAggregator::accept(update);
  }

  std::vector<flare_named_tensor> finalize() override {
    if (kept_) return kept_->finalize();
    // Finished in place: the round is over, the sums become the result.
    mean_.finish_mean(mean_.close_round());
    return mean_.result_views();
  }

 private:
  std::optional<KeptMean> kept_;  // "fold": "at_finalize"
};

}  // namespace

FLARE_AGGREGATOR_PLUGIN(FedAvg, "fedavg", "1.0.0",
                        "FedAvg weighted by local work, folded in as updates arrive or in one "
                        "pass at finalize")
