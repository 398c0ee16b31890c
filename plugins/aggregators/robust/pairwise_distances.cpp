#include "pairwise_distances.hpp"

#include <algorithm>

#include "flat_math.hpp"
#include "parallel_chunks.hpp"
#include "vector_clones.hpp"

namespace robust {
namespace {

// Coordinates per block: 4 KiB of float32 per update, so the blocks of 8
// updates (32 KiB) stay in L1/L2 while all 28 pairs are compared.
constexpr size_t kBlockBytes = 4096;

// sum (a - b)^2 over one block, in 8 independent lanes (a reduction GCC
// vectorises without reassociating anything), added up in double.
template <class T>
[[gnu::always_inline]] inline double squared_distance(const T* __restrict a,
                                                      const T* __restrict b, size_t n) {
  constexpr size_t kLanes = 8;
  T lanes[kLanes] = {};
  size_t t = 0;
  for (; t + kLanes <= n; t += kLanes)
    for (size_t l = 0; l < kLanes; ++l) {
      const T d = a[t + l] - b[t + l];
      lanes[l] += d * d;
    }
  double total = 0;
  for (size_t l = 0; l < kLanes; ++l) total += lanes[l];
  for (; t < n; ++t) {
    const double d = static_cast<double>(a[t]) - static_cast<double>(b[t]);
    total += d * d;
  }
  return total;
}

// Adds every pair's distance over elements [0, count) of `inputs` into
// `pairs` (i < j, row by row).
template <class T>
[[gnu::always_inline]] inline void add_pairs(const std::byte* const* inputs, size_t n,
                                             size_t count, double* pairs) {
  constexpr size_t kBlock = kBlockBytes / sizeof(T);
  for (size_t first = 0; first < count; first += kBlock) {
    const size_t m = std::min(kBlock, count - first);
    size_t p = 0;
    for (size_t i = 0; i < n; ++i) {
      const T* a = reinterpret_cast<const T*>(inputs[i]) + first;
      for (size_t j = i + 1; j < n; ++j)
        pairs[p++] += squared_distance(a, reinterpret_cast<const T*>(inputs[j]) + first, m);
    }
  }
}

FLARE_VECTOR_CLONES
void add_pairs_float(const std::byte* const* inputs, size_t n, size_t count, double* pairs) {
  add_pairs<float>(inputs, n, count, pairs);
}

FLARE_VECTOR_CLONES
void add_pairs_double(const std::byte* const* inputs, size_t n, size_t count, double* pairs) {
  add_pairs<double>(inputs, n, count, pairs);
}

}  // namespace

std::vector<double> pairwise_squared_distances(const KeptRound& round, const flare::Host& host) {
  const auto tensors = round.tensors();
  const auto updates = round.updates();
  const size_t n = updates.size(), num_pairs = n * (n - 1) / 2;
  const auto sizes = round.aggregated_sizes();
  constexpr size_t chunk = flare::agg::kChunkElements;
  // tensor -> index of its first chunk in `partial`, one row of pairs per chunk.
  std::vector<size_t> first_chunk(sizes.size() + 1, 0);
  for (size_t i = 0; i < sizes.size(); ++i)
    first_chunk[i + 1] = first_chunk[i] + (sizes[i] + chunk - 1) / chunk;
  std::vector<double> partial(first_chunk.back() * num_pairs, 0.0);
  flare::agg::for_each_chunk_of(
      sizes,
      [&](size_t i, size_t a, size_t b) {
        const size_t bytes = tensors[i].element_bytes;
        std::vector<const std::byte*> inputs;
        inputs.reserve(n);
        for (const KeptUpdate& u : updates) inputs.push_back(u.data[i] + a * bytes);
        double* pairs = partial.data() + (first_chunk[i] + a / chunk) * num_pairs;
        if (bytes == sizeof(float))
          add_pairs_float(inputs.data(), n, b - a, pairs);
        else
          add_pairs_double(inputs.data(), n, b - a, pairs);
        release_elements(round, i, a, b, host);
      },
      flare::agg::max_threads(), chunk);
  std::vector<double> distances(n * n, 0.0);
  for (size_t c = 0; c < first_chunk.back(); ++c) {
    size_t p = 0;
    for (size_t i = 0; i < n; ++i)
      for (size_t j = i + 1; j < n; ++j, ++p) {
        distances[i * n + j] += partial[c * num_pairs + p];
        distances[j * n + i] = distances[i * n + j];
      }
  }
  return distances;
}

}  // namespace robust
