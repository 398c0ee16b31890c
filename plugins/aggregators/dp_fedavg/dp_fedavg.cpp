// DP-FedAvg with central differential privacy (McMahan et al. 2018,
// "Learning Differentially Private Recurrent Language Models"; Flower's
// DifferentialPrivacyServerSideFixedClipping): each site's update delta
// (its model - the global model, over all float tensors together) is
// clipped to L2 norm <= clipping_norm, the clipped deltas are averaged with
// equal weights, and Gaussian noise of std noise_multiplier * clipping_norm
// / n (n the round's updates) is added to every element of the average.
//
// Equal weights, not samples: one site's whole contribution must move the
// sum of deltas by at most clipping_norm (the sensitivity the noise is
// scaled to); a weight from the site's own sample count would let one site
// move it further. Integer tensors keep the global model's values (a
// count from a site would be released without noise).
//
// The privacy spent (epsilon at target_delta, by the RDP accountant of
// rdp_accountant.hpp) is reported each round as the metric "dp_epsilon",
// with "dp_clipped" (updates clipped this round) and "dp_noise_std".
// Updates are taken whole (the norm is known only after the whole update):
// accept's views are read twice (norm, then fold) and not kept. State
// across rounds (ABI 1.4): the accountant's RDP per order and the seed.
#include <flare/plugin.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "flat_math.hpp"
#include "gaussian_noise.hpp"
#include "parallel_chunks.hpp"
#include "rdp_accountant.hpp"
#include "weighted_mean.hpp"

namespace {

using flare::Error;
using flare::agg::TensorSum;
using flare::agg::WeightedMean;
using flare::dp::RdpAccountant;
namespace one_thread = flare::agg::one_thread;

constexpr const char* kName = "dp_fedavg";
constexpr int64_t kMaxSeed = (int64_t{1} << 53) - 1;  // exact in any JSON reader

WeightedMean::Settings equal_weights_from_global() {
  WeightedMean::Settings s;
  s.weighting = flare::agg::Weighting::Uniform;  // the sensitivity (above)
  s.keep_global = true;  // deltas are taken from it
  return s;
}

// A seed nobody can predict unless configured: the noise is private only if
// its seed is (gaussian_noise.hpp).
uint64_t seed_from(const nlohmann::json& config) {
  if (config.contains("seed") && !config["seed"].is_null()) return config["seed"].get<uint64_t>();
  std::random_device os;
  const uint64_t bits = (uint64_t{os()} << 32) ^ os();
  return bits & static_cast<uint64_t>(kMaxSeed);
}

class DpFedAvg final : public flare::Aggregator {
 public:
  static flare::ConfigSchema config_schema() {
    return flare::ConfigSchema()
        .number("clipping_norm", {0, false})
        .number("noise_multiplier", {0})
        .number("target_delta", {0, false}, {1, false})
        .integer("seed", 0, kMaxSeed);
  }

  // The two options without a safe default must be given.
  static void validate_config(const nlohmann::json& config, flare::Host) {
    for (const char* key : {"clipping_norm", "noise_multiplier"})
      if (!config.contains(key) || config[key].is_null())
        throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                    std::string("option '") + key + "' is required (" + kName +
                        " has no default for it: it sets the privacy guarantee)");
  }

  DpFedAvg(const nlohmann::json& config, flare::Host host)
      : clipping_norm_((validate_config(config, host), config["clipping_norm"].get<double>())),
        noise_multiplier_(config["noise_multiplier"].get<double>()),
        target_delta_(config.value("target_delta", 1e-5)),
        seed_(seed_from(config)),
        seed_configured_(config.contains("seed") && !config["seed"].is_null()),
        host_(host),
        mean_(kName, equal_weights_from_global(), host) {
    if (noise_multiplier_ == 0)
      host_.warn(std::string(kName) +
                 ": noise_multiplier is 0: updates are clipped but no noise is added, so there "
                 "is no privacy guarantee (epsilon is infinite)");
  }

  void begin_round(int64_t round, std::span<const flare_named_tensor> model) override {
    clipped_ = 0;
    mean_.begin_round(round, model);
  }

  void accept(const flare_site_update& update) override {
    const std::string where = WeightedMean::site_of(update);
    mean_.checked_header(where, update);
    mean_.match(where, update);
    const double norm = distance_from_global(where);
    const double factor = norm > clipping_norm_ ? clipping_norm_ / norm : 1.0;
    auto& slots = mean_.slots();
    flare::agg::for_each_chunk_of(
        mean_.averaged_sizes(),
        [&](size_t i, size_t a, size_t b) {
          const size_t bytes = slots[i].element_bytes;
          slots[i].fold_difference(x_of(i) + a * bytes, mean_.global(i) + a * bytes, a, b, factor);
        },
        flare::agg::max_threads());
    for (TensorSum& slot : slots) slot.mark_written(slot.count);
    if (factor < 1.0) ++clipped_;
    host_.debug(std::string(kName) + ": " + where + ": update norm " + std::to_string(norm) +
                (factor < 1.0 ? ", clipped to " + std::to_string(clipping_norm_) : ""));
    mean_.count_in(where, 1.0);
  }

  std::vector<flare_named_tensor> finalize() override {
    const double inverse_n = mean_.close_round();  // uniform weights: 1 / n
    const int64_t round = mean_.round();
    const double noise_std = noise_multiplier_ * clipping_norm_ * inverse_n;
    auto& slots = mean_.slots();
    flare::agg::for_each_chunk_of(
        mean_.averaged_sizes(),
        [&](size_t i, size_t a, size_t b) {
          const uint64_t key = flare::dp::stream_key(seed_, static_cast<uint64_t>(round), i);
          if (slots[i].is_float32())
            release<float>(slots[i], mean_.global(i), a, b, inverse_n, noise_std, key);
          else
            release<double>(slots[i], mean_.global(i), a, b, inverse_n, noise_std, key);
        },
        flare::agg::max_threads());
    for (size_t i = 0; i < slots.size(); ++i)
      if (!slots[i].averaged)
        std::memcpy(slots[i].value.data(), mean_.global(i), slots[i].value.size());
    account(round, mean_.accepted(), noise_std);
    return mean_.result_views();
  }

  flare::AggregatorState state() override {
    flare::AggregatorState state;
    state.meta = {{"aggregator", kName}, {"rounds", rounds_}, {"seed", seed_}};
    rdp_copy_.assign(accountant_.rdp().begin(), accountant_.rdp().end());
    rdp_shape_ = static_cast<int64_t>(rdp_copy_.size());
    state.tensors.push_back(
        flare::tensor_view("rdp", rdp_copy_.data(), {kDLFloat, 64, 1}, &rdp_shape_, 1));
    return state;
  }

  void set_state(std::span<const flare_named_tensor> tensors, const nlohmann::json& meta) override {
    const std::string where = std::string(kName) + ": state: ";
    if (!meta.is_object() || meta.value("aggregator", "") != kName)
      throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                  where + "meta " + meta.dump() + " is not a " + kName + " state");
    for (const char* key : {"rounds", "seed"})
      if (!meta.contains(key) || !meta[key].is_number_integer() || meta[key].get<int64_t>() < 0)
        throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                    where + "meta " + meta.dump() + " has no '" + key + "' (an integer >= 0)");
    const auto seed = meta["seed"].get<uint64_t>();
    if (seed_configured_ && seed != seed_)
      throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                  where + "its seed " + std::to_string(seed) + " differs from option 'seed' " +
                      std::to_string(seed_));
    if (tensors.size() != 1 || !tensors[0].name || std::string(tensors[0].name) != "rdp" ||
        tensors[0].tensor.dtype.code != kDLFloat || tensors[0].tensor.dtype.bits != 64 ||
        tensors[0].tensor.ndim != 1 || tensors[0].tensor.device.device_type != kDLCPU)
      throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                  where + "expected one float64 CPU tensor 'rdp' of the accountant's orders");
    const auto* rdp = static_cast<const double*>(tensors[0].tensor.data);
    try {
      accountant_.set_rdp({rdp, static_cast<size_t>(tensors[0].tensor.shape[0])});
    } catch (const std::invalid_argument& e) {
      throw Error(FLARE_ERROR_INVALID_ARGUMENT, where + "tensor 'rdp': " + e.what());
    }
    seed_ = seed;
    rounds_ = meta["rounds"].get<int64_t>();
  }

 private:
  const std::byte* x_of(size_t slot) const {
    const DLTensor& t = mean_.matched()[slot]->tensor;
    return static_cast<const std::byte*>(t.data) + t.byte_offset;
  }

  // ||update - global|| over every float tensor, in double, on all cores;
  // throws naming the first tensor holding NaN or infinity. No separate
  // finite check: a NaN or infinity makes its chunk's sum of squares NaN or
  // infinite, which float32 values alone never do. The chunks' partial sums
  // are added in order: the same bits for any thread count.
  double distance_from_global(const std::string& where) {
    auto& slots = mean_.slots();
    const auto sizes = mean_.averaged_sizes();
    constexpr size_t chunk = flare::agg::kChunkElements;
    partials_.resize(slots.size());
    for (size_t i = 0; i < slots.size(); ++i) partials_[i].assign((sizes[i] + chunk - 1) / chunk, 0);
    flare::agg::for_each_chunk_of(
        sizes,
        [&](size_t i, size_t a, size_t b) {
          const std::byte* x = x_of(i) + a * slots[i].element_bytes;
          const std::byte* g = mean_.global(i) + a * slots[i].element_bytes;
          partials_[i][a / chunk] =
              slots[i].is_float32()
                  ? one_thread::squared_distance(reinterpret_cast<const float*>(x),
                                                 reinterpret_cast<const float*>(g), b - a)
                  : one_thread::squared_distance(reinterpret_cast<const double*>(x),
                                                 reinterpret_cast<const double*>(g), b - a);
        },
        flare::agg::max_threads());
    double total = 0;
    for (const auto& tensor : partials_)
      for (double p : tensor) total += p;
    if (!std::isfinite(total)) {
      mean_.check_finite(where);  // throws, naming the tensor
      throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                  where + ": the update's distance from the global model overflows float64");
    }
    return std::sqrt(total);
  }

  // Elements [a, b) of a slot become global + mean delta + noise, in double,
  // rounded once; the noise drawn a block of pairs at a time (the generator's
  // loop vectorises). Pairs of draws never straddle a chunk (chunks start at
  // even elements), so every element's draw depends on its index alone.
  template <class T>
  static void release(TensorSum& slot, const std::byte* global_bytes, size_t a, size_t b,
                      double inverse_n, double noise_std, uint64_t key) {
    constexpr size_t kPairs = 512;
    double first[kPairs], second[kPairs];
    T* out = reinterpret_cast<T*>(slot.value.data());
    const T* global = reinterpret_cast<const T*>(global_bytes);
    for (size_t block = a; block < b; block += 2 * kPairs) {
      const size_t end = std::min(b, block + 2 * kPairs), pairs = (end - block + 1) / 2;
      if (noise_std > 0) flare::dp::normal_pairs(key, block / 2, pairs, first, second);
      else std::fill_n(first, pairs, 0.0), std::fill_n(second, pairs, 0.0);
      const auto noised = [&](size_t k, double draw) {
        out[k] = static_cast<T>(static_cast<double>(global[k]) +
                                static_cast<double>(out[k]) * inverse_n + noise_std * draw);
      };
      for (size_t j = 0; j < pairs; ++j) {
        noised(block + 2 * j, first[j]);
        if (block + 2 * j + 1 < end) noised(block + 2 * j + 1, second[j]);
      }
    }
  }

  void account(int64_t round, size_t n, double noise_std) {
    accountant_.add_gaussian_round(noise_multiplier_);
    ++rounds_;
    const double epsilon = accountant_.epsilon(target_delta_);
    if (std::isfinite(epsilon)) host_.metric("dp_epsilon", epsilon, round);
    host_.metric("dp_clipped", static_cast<double>(clipped_), round);
    host_.metric("dp_noise_std", noise_std, round);
    host_.info(std::string(kName) + ": round " + std::to_string(round) + ": " +
               std::to_string(clipped_) + " of " + std::to_string(n) +
               " updates clipped to norm " + std::to_string(clipping_norm_) + ", noise std " +
               std::to_string(noise_std) + "; privacy spent after " + std::to_string(rounds_) +
               " round(s): epsilon " + (std::isfinite(epsilon) ? std::to_string(epsilon) : "inf") +
               " at delta " + nlohmann::json(target_delta_).dump() + " (RDP accountant)");
  }

  double clipping_norm_;
  double noise_multiplier_;
  double target_delta_;
  uint64_t seed_;
  bool seed_configured_;
  flare::Host host_;
  WeightedMean mean_;
  RdpAccountant accountant_;
  int64_t rounds_ = 0;  // rounds released (noised) so far
  size_t clipped_ = 0;  // updates clipped this round
  std::vector<std::vector<double>> partials_;  // slot, chunk -> squared distance
  std::vector<double> rdp_copy_;  // state()'s view
  int64_t rdp_shape_ = 0;
};

}  // namespace

FLARE_AGGREGATOR_PLUGIN(DpFedAvg, "dp_fedavg", "1.0.0",
                        "DP-FedAvg: clipped deltas, equal weights, Gaussian noise, RDP accountant")
