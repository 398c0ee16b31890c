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

#include <cstddef>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "kept_round.hpp"
#include "weighted_mean.hpp"

namespace flare::agg {

class KeptMean {
 public:
  // `aggregator` names the plugin in messages ("fedavg"). Throws under a host
  // older than ABI 1.4, which would not keep the updates.
  KeptMean(std::string aggregator, WeightedMean::Settings settings, Host host);

  void begin_round(int64_t round, std::span<const flare_named_tensor> model);
  // Ends a begun round without a result (a caller's own check of the model
  // failed after begin_round): updates are refused until the next one.
  void cancel_round() {
    round_.close();
    weights_.clear();
  }
  // Keeps the update's views and weight; a refused update is not kept.
  void accept(const flare_site_update& update);
  // What finalize does with each block of the mean while it is in the cache:
  // (tensor, first element, the block's bytes, elements), rewriting the block
  // in place into the result (the FedOpt family's server step), so the mean
  // is written once and never read back from memory. Float tensors only.
  using BlockStep = std::function<void(size_t, size_t, std::byte*, size_t)>;
  // Elements of a block: 16 KiB of float32, which the step's other arrays
  // (global model, moments) join in the L1/L2 cache.
  static constexpr size_t kBlockElements = 4096;

  // The mean over every kept update (at least one), each block then passed
  // through `then` when given; views valid until the next begin_round. Hands
  // back the pages read.
  std::vector<flare_named_tensor> finalize(const BlockStep& then = {});

  int64_t round() const { return round_.round(); }
  // The round's layout (valid from begin_round until the next one).
  std::span<const TensorLayout> tensors() const { return round_.tensors(); }

 private:
  void mean_of_floats(const BlockStep& then);

  WeightedMean::Settings settings_;
  Host host_;
  KeptRound round_;
  std::vector<double> weights_;  // update index -> weight
  ResultModel result_;
};

}  // namespace flare::agg
