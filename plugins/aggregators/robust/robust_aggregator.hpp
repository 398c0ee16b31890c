// Base of the robust aggregators (median, trimmed_mean, krum, multi_krum,
// bulyan): each needs every update of a round at once, so it declares
// FLARE_AGGREGATOR_KEEPS_UPDATES, keeps accept's views (KeptRound) and does
// all its work in finalize, reading the kept updates block by block. A
// subclass writes `aggregate`.
#pragma once

#include <flare/plugin.hpp>

#include <string>
#include <vector>

#include "kept_round.hpp"

namespace robust {

// The kept round (KeptRound, ResultModel, ...) is common/kept_round.hpp's.
using namespace flare::agg;

class RobustAggregator : public flare::Aggregator {
 public:
  static constexpr uint64_t properties = FLARE_AGGREGATOR_KEEPS_UPDATES;

  RobustAggregator(std::string name, flare::Host host) : host_(host), round_(std::move(name)) {}

  void begin_round(int64_t round, std::span<const flare_named_tensor> model) override {
    round_.begin(round, model);
  }
  void accept(const flare_site_update& update) override { round_.keep(update, host_); }

  std::vector<flare_named_tensor> finalize() override {
    round_.check_finalizable();
    result_.resize(round_.tensors());
    aggregate(result_);
    round_.close();
    return result_.views(round_.tensors());
  }

 protected:
  // Writes the next global model into `result` (sized for the layout),
  // reading round_.updates() (at least one) and handing back their pages.
  virtual void aggregate(ResultModel& result) = 0;

  // "krum: option 'f' = 2 needs at least 7 updates (n > 2f + 2), round 3 received 5".
  [[noreturn]] void refuse_too_few(const std::string& option, int64_t value, size_t needed,
                                   const std::string& rule) const {
    throw flare::Error(FLARE_ERROR_INVALID_ARGUMENT,
                       round_.aggregator() + ": option '" + option + "' = " +
                           std::to_string(value) + " needs at least " + std::to_string(needed) +
                           " updates (" + rule + "), round " + std::to_string(round_.round()) +
                           " received " + std::to_string(round_.updates().size()));
  }

  flare::Host host_;
  KeptRound round_;
  ResultModel result_;
};

}  // namespace robust
