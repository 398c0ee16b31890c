#include "kept_mean.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <numeric>
#include <span>

#include "flat_math.hpp"
#include "parallel_chunks.hpp"
#include "vector_clones.hpp"

namespace flare::agg {
namespace {

// The updates are read in step, a few vectors of each in turn, summed in
// registers: every update's stream is in flight at once (one update's block
// after another stalled at each 4 KiB page, where the hardware prefetcher
// stops), and the result is written once.
template <class T>
using Vector [[gnu::vector_size(32)]] = T;
// GCC notes that a 32-byte vector returned without AVX changes the ABI; load
// is always inlined into FLARE_VECTOR_CLONES functions, so no call passes one.
#pragma GCC diagnostic ignored "-Wpsabi"
constexpr size_t kVectors = 4;  // per step: 4 sums of 32 bytes in registers

template <class T>
[[gnu::always_inline]] inline Vector<T> load(const T* p) {
  Vector<T> v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// out[0, n) = (w_1 x_1 + ... + w_k x_k) * scale, the updates added in order
// with flat_math's fold_first / fold operations (product and sum each
// rounded to T; this file is built without FMA contraction). The scale is
// applied in T: in double, as flat_math's finish does, the conversions took
// a fifth of the pass (bench/RESULTS.md); for float32 it costs two roundings
// more (scale and product): the bound of kept_mean.hpp.
template <class T, class Weight>
[[gnu::always_inline]] inline void mean_in_step(T* __restrict out, const T* const* x,
                                                const Weight* w, size_t updates, double scale,
                                                size_t n) {
  constexpr size_t lanes = sizeof(Vector<T>) / sizeof(T);
  constexpr size_t step = kVectors * lanes;
  size_t j = 0;
  for (; j + step <= n; j += step) {
    Vector<T> sum[kVectors];
    for (size_t v = 0; v < kVectors; ++v) sum[v] = w[0] * load(x[0] + j + v * lanes);
    for (size_t k = 1; k < updates; ++k)
      for (size_t v = 0; v < kVectors; ++v) sum[v] += w[k] * load(x[k] + j + v * lanes);
    for (size_t v = 0; v < kVectors; ++v) {
      const Vector<T> mean = sum[v] * static_cast<T>(scale);
      std::memcpy(out + j + v * lanes, &mean, sizeof(mean));
    }
  }
  for (; j < n; ++j) {  // the tail
    T sum = w[0] * x[0][j];
    for (size_t k = 1; k < updates; ++k) sum += w[k] * x[k][j];
    out[j] = sum * static_cast<T>(scale);
  }
}

FLARE_VECTOR_CLONES
void mean_of(float* out, const float* const* x, const float* w, size_t updates, double scale,
             size_t n) {
  mean_in_step(out, x, w, updates, scale, n);
}

FLARE_VECTOR_CLONES
void mean_of(double* out, const double* const* x, const double* w, size_t updates, double scale,
             size_t n) {
  mean_in_step(out, x, w, updates, scale, n);
}

// "sum": "compensated": the float32 pair of flat_math, one update's block
// after another (an L1 block: the sum and its carry stay there).
void compensated_mean(float* out, std::span<const float* const> x, std::span<const double> w,
                      double scale, size_t n) {
  constexpr size_t kBlock = 2048;
  std::array<float, kBlock> carry;
  for (size_t a = 0; a < n; a += kBlock) {
    const size_t m = std::min(kBlock, n - a);
    one_thread::fold_first(out + a, carry.data(), x[0] + a, w[0], m);
    for (size_t k = 1; k < x.size(); ++k) one_thread::fold(out + a, carry.data(), x[k] + a, w[k], m);
    one_thread::finish(out + a, carry.data(), scale, m);
  }
}

}  // namespace

KeptMean::KeptMean(std::string aggregator, WeightedMean::Settings settings, Host host)
    : settings_(settings), host_(host), round_(std::move(aggregator)) {
  // An older host never reads the aggregator's properties: accept's views
  // would die with the call while this keeps them.
  if (!FLARE_HAS_FIELD(host.services(), flare_host_services, release_pages))
    throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                round_.aggregator() + ": fold = \"at_finalize\" keeps the updates until "
                "finalize, which needs a host of ABI 1.4 or later");
}

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

std::vector<flare_named_tensor> KeptMean::finalize(const BlockStep& then) {
  round_.check_finalizable();
  result_.resize(round_.tensors());
  mean_of_floats(then);
  copy_integer_tensors(round_, round_.updates().back(), result_, host_);
  round_.close();
  return result_.views(round_.tensors());
}

void KeptMean::mean_of_floats(const BlockStep& then) {
  const double scale = 1.0 / std::accumulate(weights_.begin(), weights_.end(), 0.0);
  const std::vector<float> float_weights(weights_.begin(), weights_.end());  // as fold rounds them
  const auto tensors = round_.tensors();
  const auto updates = round_.updates();
  // Elements [a, b) of tensor i, whose updates' slices start at `slices`.
  const auto mean_block = [&](size_t i, size_t a, size_t b, const std::byte* const* slices) {
    const size_t bytes = tensors[i].element_bytes;
    std::byte* out = result_.data(i) + a * bytes;
    if (bytes == sizeof(double))
      mean_of(reinterpret_cast<double*>(out), reinterpret_cast<const double* const*>(slices),
              weights_.data(), updates.size(), scale, b - a);
    else if (settings_.summation == Summation::Compensated)
      compensated_mean(reinterpret_cast<float*>(out),
                       {reinterpret_cast<const float* const*>(slices), updates.size()}, weights_,
                       scale, b - a);
    else
      mean_of(reinterpret_cast<float*>(out), reinterpret_cast<const float* const*>(slices),
              float_weights.data(), updates.size(), scale, b - a);
  };
  for_each_chunk_of(
      round_.aggregated_sizes(),
      [&](size_t i, size_t a, size_t b) {
        const size_t bytes = tensors[i].element_bytes;
        std::vector<const std::byte*> slices(updates.size());
        // Without a step the chunk is one block: nothing reads the mean back.
        const size_t block = then ? kBlockElements : b - a;
        for (size_t first = a; first < b; first += block) {
          const size_t last = std::min(b, first + block);
          for (size_t k = 0; k < updates.size(); ++k) slices[k] = updates[k].data[i] + first * bytes;
          mean_block(i, first, last, slices.data());
          if (then) then(i, first, result_.data(i) + first * bytes, last - first);
        }
        release_elements(round_, i, a, b, host_);
      },
      max_threads());
}

}  // namespace flare::agg
