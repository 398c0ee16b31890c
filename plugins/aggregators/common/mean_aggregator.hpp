// An aggregator whose round is a WeightedMean: whole and streamed updates
// (ABI 1.3) are folded as fedavg folds them; a subclass says what finalize
// makes of the sums (fedavg: the mean; the FedOpt family: a server step).
#pragma once

#include <flare/plugin.hpp>

#include <string>
#include <utility>

#include "weighted_mean.hpp"

namespace flare::agg {

class MeanAggregator : public flare::Aggregator {
 public:
  MeanAggregator(std::string name, WeightedMean::Settings settings, Host host)
      : mean_(std::move(name), settings, host) {}

  void begin_round(int64_t round, std::span<const flare_named_tensor> model) override {
    mean_.begin_round(round, model);
  }
  void accept(const flare_site_update& update) override { mean_.accept(update); }
  void begin_update(uint64_t id, const flare_site_update& header) override {
    mean_.begin_update(id, header);
  }
  void accept_chunk(uint64_t id, const flare_update_chunk& chunk) override {
    mean_.accept_chunk(id, chunk);
  }
  void retract_chunk(uint64_t id, const flare_update_chunk& chunk) override {
    mean_.retract_chunk(id, chunk);
  }
  void end_update(uint64_t id) override { mean_.end_update(id); }
  void abort_update(uint64_t id) noexcept override { mean_.abort_update(id); }

 protected:
  WeightedMean mean_;
};

}  // namespace flare::agg
