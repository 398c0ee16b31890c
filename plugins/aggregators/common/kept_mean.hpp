// The weighted mean of a round's updates computed at finalize in one pass
// (fedavg's "fold": "at_finalize"): accept only keeps each update's views and
// weight (the host keeps the bytes until finalize, FLARE_AGGREGATOR_KEEPS_UPDATES),
// and finalize reads every update once, block by block, on all cores:
// memory speed at the round's end instead of a fold per arrival.
//
// Same contract as WeightedMean (weighted_mean.hpp). float32: the updates
// are summed in their order of acceptance, in float32, as fold_first / fold
// do (flat_math.hpp), then scaled by float(1 / sum_k w_k) in float32, so
//   |result - exact mean| <= (n + 3) * 2^-24 * sum_k w_k |x_k| / sum_k w_k
// (fold's bound, one rounding more for the scale) and within 2^-22 relative
// of the mean folded as the updates arrive in the same order. "compensated"
// sums a float32 pair (about half an ulp); float64 tensors sum and scale in
// double, the same bits as WeightedMean. Integer tensors take the latest
// accepted update's value.
#pragma once

#include <flare/plugin.hpp>

#include <span>
#include <string>
#include <vector>

#include "kept_round.hpp"
#include "weighted_mean.hpp"

namespace flare::agg {

class KeptMean {
 public:
  // `aggregator` names the plugin in messages ("fedavg").
  KeptMean(std::string aggregator, WeightedMean::Settings settings, Host host)
      : settings_(settings), host_(host), round_(std::move(aggregator)) {}

  void begin_round(int64_t round, std::span<const flare_named_tensor> model);
  // Keeps the update's views and weight; a refused update is not kept.
  void accept(const flare_site_update& update);
  // The mean over every kept update (at least one); views valid until the
  // next begin_round. Hands back the pages read.
  std::vector<flare_named_tensor> finalize();

 private:
  void mean_of_floats();

  WeightedMean::Settings settings_;
  Host host_;
  KeptRound round_;
  std::vector<double> weights_;  // update index -> weight
  ResultModel result_;
};

}  // namespace flare::agg
