#include "kept_mean.hpp"

#include <algorithm>
#include <array>
#include <numeric>
#include <type_traits>

#include "flat_math.hpp"
#include "parallel_chunks.hpp"

namespace flare::agg {
namespace {

// Coordinates per block: the block's result (and carry) stay in L2 while
// every update's slice of it streams through once; a slice of several pages
// keeps the hardware prefetcher going (it stops at each 4 KiB page).
constexpr size_t kBlockElements = 8192;

// result[0, n) = sum_k w_k x_k[0, n) * scale, one block at a time: each
// update's block read once, the result written once.
template <class T>
void block_mean(T* result, std::span<const KeptUpdate> updates, size_t tensor, size_t first,
                std::span<const double> weights, double scale, Summation summation, size_t n) {
  auto x = [&](size_t k, size_t a) {
    return reinterpret_cast<const T*>(updates[k].data[tensor]) + first + a;
  };
  std::array<float, kBlockElements> carry;
  for (size_t a = 0; a < n; a += kBlockElements) {
    const size_t m = std::min(kBlockElements, n - a);
    T* out = result + a;
    if constexpr (std::is_same_v<T, float>) {
      if (summation == Summation::Compensated) {
        one_thread::fold_first(out, carry.data(), x(0, a), weights[0], m);
        for (size_t k = 1; k < updates.size(); ++k)
          one_thread::fold(out, carry.data(), x(k, a), weights[k], m);
        one_thread::finish(out, carry.data(), scale, m);
        continue;
      }
    }
    one_thread::fold_first(out, x(0, a), weights[0], m);
    for (size_t k = 1; k < updates.size(); ++k) one_thread::fold(out, x(k, a), weights[k], m);
    if constexpr (std::is_same_v<T, float>)
      one_thread::finish(out, scale, m);
    else
      one_thread::finish(out, out, scale, m);
  }
}

}  // namespace

void KeptMean::begin_round(int64_t round, std::span<const flare_named_tensor> model) {
  weights_.clear();
  round_.begin(round, model);
}

void KeptMean::accept(const flare_site_update& update) {
  const std::string where = WeightedMean::site_of(update);
  if (!FLARE_HAS_FIELD(&update, flare_site_update, num_steps))
    throw Error(FLARE_ERROR_INVALID_ARGUMENT, "site update struct_size " +
                                                  std::to_string(update.struct_size) +
                                                  " is too small for ABI 1");
  const double weight = checked_weight(where, settings_.weighting, update);
  round_.keep(update, host_);  // throws before keeping anything
  weights_.push_back(weight);
  host_.debug(round_.aggregator() + ": round " + std::to_string(round_.round()) + ": kept " +
              where + " with weight " + std::to_string(weight));
}

std::vector<flare_named_tensor> KeptMean::finalize() {
  round_.check_finalizable();
  result_.resize(round_.tensors());
  mean_of_floats();
  copy_integer_tensors(round_, round_.updates().back(), result_, host_);
  round_.close();
  return result_.views(round_.tensors());
}

void KeptMean::mean_of_floats() {
  const double scale = 1.0 / std::accumulate(weights_.begin(), weights_.end(), 0.0);
  const auto tensors = round_.tensors();
  const auto updates = round_.updates();
  for_each_chunk_of(
      round_.aggregated_sizes(),
      [&](size_t i, size_t a, size_t b) {
        if (tensors[i].dtype.bits == 32)
          block_mean(reinterpret_cast<float*>(result_.data(i)) + a, updates, i, a, weights_,
                     scale, settings_.summation, b - a);
        else
          block_mean(reinterpret_cast<double*>(result_.data(i)) + a, updates, i, a, weights_,
                     scale, Summation::Float32, b - a);
        release_elements(round_, i, a, b, host_);
      },
      max_threads());
}

}  // namespace flare::agg
