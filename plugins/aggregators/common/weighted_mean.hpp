// The weighted mean of a round's site updates, folded into running sums as
// they arrive, whole (accept) or chunk by chunk as they stream in (ABI 1.3),
// so memory does not grow with the number of sites. fedavg is this and
// nothing else; the FedOpt family takes the mean as its pseudo-gradient's
// start, dp_fedavg folds clipped differences into the same sums.
//
// Every update must carry exactly the global model's tensors (any order) with
// the same dtypes and shapes, finite values and a finite weight > 0. float32
// tensors are summed in one float32 array (1x the model; plain float32
// arithmetic, error bound in flat_math.hpp) or, with "compensated", a float32
// pair (2x, within about half an ulp); float64 ones in double. The arrival
// order moves the result only by float rounding. Integer tensors (e.g.
// BatchNorm's num_batches_tracked) take the value of the latest completed
// update.
#pragma once

#include <flare/plugin.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "tensor_sum.hpp"

namespace flare::agg {

enum class Weighting { NumSamples, NumSteps, Uniform };

// The update's weight under `weighting` (its header's num_samples, num_steps,
// or 1); throws naming `where` unless finite and > 0.
double checked_weight(const std::string& where, Weighting weighting,
                      const flare_site_update& update);

class WeightedMean {
 public:
  struct Settings {
    Weighting weighting = Weighting::NumSamples;
    Summation summation = Summation::Float32;
    // Keep begin_round's global model until the next begin_round, for
    // aggregators that step from it: its views where a 1.4 host keeps it
    // (plugin_abi.h, begin_round), else a copy (older hosts lend it for the
    // call only).
    bool keep_global = false;
  };

  // Adds the options "weight" ("num_samples" | "num_steps" | "uniform") and
  // "sum" ("float32" | "compensated") to an aggregator's schema.
  static ConfigSchema add_options(ConfigSchema schema);
  // `config` has passed a schema with add_options.
  static Settings settings_from(const nlohmann::json& config);

  // `aggregator` names the plugin in messages ("fedavg").
  WeightedMean(std::string aggregator, Settings settings, Host host);

  void begin_round(int64_t round, std::span<const flare_named_tensor> model);
  // Ends a begun round without a result (a caller's own check of the model
  // failed after begin_round): updates are refused until the next one.
  void cancel_round() { started_ = false; }
  // Folds a whole update in with its header's weight.
  void accept(const flare_site_update& update);

  // Streamed updates (ABI 1.3; the host has checked every chunk).
  void begin_update(uint64_t id, const flare_site_update& header);
  void accept_chunk(uint64_t id, const flare_update_chunk& chunk);
  void retract_chunk(uint64_t id, const flare_update_chunk& chunk);
  void end_update(uint64_t id);
  void abort_update(uint64_t id) noexcept;

  // Ends the round: refuses a second call, updates still in flight and a
  // round without any update. Returns 1 / the total weight. The sums are the
  // caller's to finish after it (finish_mean, or its own pass).
  double close_round();
  // The sums become the weighted mean, in place, on all cores.
  void finish_mean(double scale);
  // Views of every slot's value: the round's result once finished.
  std::vector<flare_named_tensor> result_views();

  // ---- For an aggregator that folds whole updates its own way (dp_fedavg).

  static std::string site_of(const flare_site_update& update);
  // The update's weight, once its header fits this round.
  double checked_header(const std::string& where, const flare_site_update& update) const;
  // Pairs each global tensor with the update's tensor of the same name and
  // checks dtype and shape (matched()); throws naming the site and tensor.
  void match(const std::string& where, const flare_site_update& update);
  const std::vector<const flare_named_tensor*>& matched() const { return matched_; }
  // Throws naming the first tensor of the matched update (in the global
  // model's order) holding NaN or infinity; returns if all are finite.
  void check_finite(const std::string& where);
  // Counts a folded update in the round.
  void count_in(const std::string& where, double weight);

  std::vector<TensorSum>& slots() { return slots_; }
  // Slot index -> elements averaged (0 for an integer tensor): the segments
  // a parallel pass over every float tensor runs on (for_each_chunk_of).
  std::span<const size_t> averaged_sizes() const { return averaged_sizes_; }
  // begin_round's value of a slot (Settings::keep_global only).
  const std::byte* global(size_t slot) const { return global_views_[slot]; }
  int64_t round() const { return round_; }
  size_t accepted() const { return accepted_; }
  Summation summation() const { return settings_.summation; }
  const std::string& aggregator() const { return aggregator_; }

 private:
  // A streamed update between begin_update and end_update / abort_update.
  struct InFlight {
    std::string where;               // "site 'x'", for messages
    double weight = 0;
    std::vector<uint64_t> covered;   // slot -> elements received, a prefix
    std::vector<std::vector<std::byte>> integers;  // integer slots' staged values
  };

  void copy_global(std::span<const flare_named_tensor> model);
  InFlight& in_flight(uint64_t id, const char* call);
  size_t checked_index(const InFlight& update, const flare_update_chunk& chunk) const;
  TensorSum& checked_chunk(const InFlight& update, const flare_update_chunk& chunk);
  void fold_if_finite(const std::string& where, double weight);

  std::string aggregator_;
  Settings settings_;
  Host host_;
  std::vector<TensorSum> slots_;
  std::unordered_map<std::string, size_t> index_;
  std::vector<const flare_named_tensor*> matched_;  // slot index -> update tensor
  std::vector<size_t> averaged_sizes_;  // slot index -> elements to average (0: copied)
  std::vector<std::vector<size_t>> folded_;  // slot, chunk -> elements accept folded
  std::vector<std::vector<std::byte>> globals_;  // slot -> a copy, under an older host
  std::vector<const std::byte*> global_views_;   // slot -> begin_round's value
  int64_t round_ = 0;
  double total_weight_ = 0;
  size_t accepted_ = 0;
  bool started_ = false;
  bool finished_ = false;  // close_round ended it: the sums are the result's
  std::unordered_map<uint64_t, InFlight> in_flight_;
};

}  // namespace flare::agg
