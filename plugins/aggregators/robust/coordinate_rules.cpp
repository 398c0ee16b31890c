#include "coordinate_rules.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>

#include "flat_math.hpp"
#include "parallel_chunks.hpp"
#include "vector_clones.hpp"

namespace robust {
namespace {

// Coordinates per tile: 512 bytes per row (16 AVX2 vectors), so the n rows
// of a tile stay in L1 for every compare-exchange of the network.
constexpr size_t kTileBytes = 512;
template <class T>
constexpr size_t kTile = kTileBytes / sizeof(T);

using Network = std::vector<std::pair<uint32_t, uint32_t>>;

template <class T>
[[gnu::always_inline]] inline void compare_exchange(T* __restrict lo, T* __restrict hi) {
  // Written as minps/maxps compute them, so they vectorise without -ffast-math.
  for (size_t t = 0; t < kTile<T>; ++t) {
    const T a = lo[t], b = hi[t];
    lo[t] = b < a ? b : a;
    hi[t] = b < a ? a : b;
  }
}

template <class T>
[[gnu::always_inline]] inline void median_of_sorted(const T* rows, size_t n, T* __restrict out) {
  const T* hi = rows + (n / 2) * kTile<T>;
  if (n % 2) {
    std::memcpy(out, hi, kTileBytes);
    return;
  }
  const T* lo = hi - kTile<T>;
  // Halved before the sum: no overflow near the largest finite values.
  for (size_t t = 0; t < kTile<T>; ++t) out[t] = T(0.5) * lo[t] + T(0.5) * hi[t];
}

template <class T>
[[gnu::always_inline]] inline void mean_of_rows(const T* rows, size_t first, size_t count,
                                                T* __restrict out) {
  std::memcpy(out, rows + first * kTile<T>, kTileBytes);
  for (size_t r = first + 1; r < first + count; ++r) {
    const T* row = rows + r * kTile<T>;
    for (size_t t = 0; t < kTile<T>; ++t) out[t] += row[t];
  }
  const T divisor = static_cast<T>(count);
  for (size_t t = 0; t < kTile<T>; ++t) out[t] /= divisor;
}

// The `k` sorted values nearest the median form a window [a, a + k) of the
// sorted row: one whose neighbours outside lie on either side of the median
// (so they are the nearest values outside) and no nearer than its farther
// end. Of several such windows (equally near values) the first, lowest, is
// taken.
template <class T>
[[gnu::always_inline]] inline void closest_to_median(const T* rows, size_t n, size_t k,
                                                     T* __restrict out) {
  constexpr T kInfinity = std::numeric_limits<T>::infinity();
  alignas(64) T median[kTile<T>], found[kTile<T>], sum[kTile<T>];
  median_of_sorted(rows, n, median);
  for (size_t t = 0; t < kTile<T>; ++t) found[t] = 0;
  for (size_t a = 0; a + k <= n; ++a) {
    const T* lo = rows + a * kTile<T>;
    const T* hi = rows + (a + k - 1) * kTile<T>;
    const T* below = a > 0 ? lo - kTile<T> : nullptr;
    const T* above = a + k < n ? hi + kTile<T> : nullptr;
    std::memcpy(sum, lo, kTileBytes);
    for (size_t r = a + 1; r < a + k; ++r) {
      const T* row = rows + r * kTile<T>;
      for (size_t t = 0; t < kTile<T>; ++t) sum[t] += row[t];
    }
    for (size_t t = 0; t < kTile<T>; ++t) {
      const T m = median[t];
      const T inside = std::max(std::abs(lo[t] - m), std::abs(hi[t] - m));
      const T next_below = below ? m - below[t] : kInfinity;  // < 0: the window is too high
      const T next_above = above ? above[t] - m : kInfinity;  // < 0: too low
      const bool nearest = inside <= next_below && inside <= next_above;
      const bool take = nearest && found[t] == 0;
      out[t] = take ? sum[t] : out[t];
      found[t] = nearest ? T(1) : found[t];
    }
  }
  const T divisor = static_cast<T>(k);
  for (size_t t = 0; t < kTile<T>; ++t) out[t] /= divisor;
}

// One tile: gather, sort, reduce. `scratch` holds n rows of a tile.
template <class T>
[[gnu::always_inline]] inline void apply_tile(const CoordinateRule& rule, const Network& network,
                                              T* __restrict scratch, T* __restrict out) {
  for (const auto& [i, j] : network)
    compare_exchange(scratch + i * kTile<T>, scratch + j * kTile<T>);
  switch (rule.rule) {
    case Rule::Median: median_of_sorted(scratch, rule.n, out); break;
    case Rule::TrimmedMean: mean_of_rows(scratch, rule.cut, rule.n - 2 * rule.cut, out); break;
    case Rule::ClosestToMedian: closest_to_median(scratch, rule.n, rule.closest, out); break;
  }
}

template <class T>
[[gnu::always_inline]] inline void apply_all(const CoordinateRule& rule, const Network& network,
                                             const T* const* inputs, T* out, size_t count) {
  std::vector<T> scratch(rule.n * kTile<T>, T(0));
  alignas(64) T tail[kTile<T>];
  for (size_t first = 0; first < count; first += kTile<T>) {
    const size_t m = std::min(kTile<T>, count - first);
    for (size_t k = 0; k < rule.n; ++k)
      std::memcpy(scratch.data() + k * kTile<T>, inputs[k] + first, m * sizeof(T));
    if (m == kTile<T>) {
      apply_tile(rule, network, scratch.data(), out + first);
    } else {  // the lanes past `count` hold stale but finite values
      apply_tile(rule, network, scratch.data(), tail);
      std::memcpy(out + first, tail, m * sizeof(T));
    }
  }
}

FLARE_VECTOR_CLONES
void apply_float(const CoordinateRule& rule, const Network& network, const float* const* inputs,
                 float* out, size_t count) {
  apply_all(rule, network, inputs, out, count);
}

FLARE_VECTOR_CLONES
void apply_double(const CoordinateRule& rule, const Network& network, const double* const* inputs,
                  double* out, size_t count) {
  apply_all(rule, network, inputs, out, count);
}

}  // namespace

Network sorting_network(size_t n) {
  Network out;
  for (size_t p = 1; p < n; p <<= 1)
    for (size_t k = p; k >= 1; k >>= 1)
      for (size_t j = k % p; j + k < n; j += 2 * k)
        for (size_t i = 0; i < std::min(k, n - j - k); ++i)
          if ((i + j) / (2 * p) == (i + j + k) / (2 * p))
            out.emplace_back(static_cast<uint32_t>(i + j), static_cast<uint32_t>(i + j + k));
  return out;
}

CoordinateKernel::CoordinateKernel(CoordinateRule rule)
    : rule_(rule), network_(sorting_network(rule.n)) {}

void CoordinateKernel::apply(const float* const* inputs, float* out, size_t count) const {
  apply_float(rule_, network_, inputs, out, count);
}

void CoordinateKernel::apply(const double* const* inputs, double* out, size_t count) const {
  apply_double(rule_, network_, inputs, out, count);
}

void apply_coordinatewise(const KeptRound& round, std::span<const size_t> which,
                          const CoordinateKernel& kernel, ResultModel& result,
                          const flare::Host& host) {
  std::vector<size_t> chosen(which.begin(), which.end());
  if (chosen.empty()) {
    chosen.resize(round.updates().size());
    std::iota(chosen.begin(), chosen.end(), size_t{0});
  }
  const auto tensors = round.tensors();
  const auto updates = round.updates();
  flare::agg::for_each_chunk_of(
      round.aggregated_sizes(),
      [&](size_t i, size_t a, size_t b) {
        const size_t bytes = tensors[i].element_bytes;
        std::vector<const std::byte*> inputs;
        inputs.reserve(chosen.size());
        for (size_t k : chosen) inputs.push_back(updates[k].data[i] + a * bytes);
        std::byte* out = result.data(i) + a * bytes;
        if (bytes == sizeof(float))
          kernel.apply(reinterpret_cast<const float* const*>(inputs.data()),
                       reinterpret_cast<float*>(out), b - a);
        else
          kernel.apply(reinterpret_cast<const double* const*>(inputs.data()),
                       reinterpret_cast<double*>(out), b - a);
        release_elements(round, i, a, b, host, chosen);
      },
      flare::agg::max_threads());
}

}  // namespace robust
