#include "pairwise_distances.hpp"

#include <algorithm>
#include <array>
#include <utility>
#include <vector>

#include "avx2_ops.hpp"
#include "cpu_features.hpp"
#include "flat_math.hpp"
#include "parallel_chunks.hpp"

namespace robust {
namespace {

// Coordinates per block: 4 KiB of float32 per update, so the blocks of 8
// updates (32 KiB) stay in L1/L2 while all 28 pairs are compared.
constexpr size_t kBlockBytes = 4096;

// sum (a - b)^2 over one block (at most 1024 values, so a float sum loses
// at most about 1e-4 of it); the blocks are added up in double.
template <class T>
double squared_distance(const T* __restrict a, const T* __restrict b, size_t n) {
  T total = 0;
  for (size_t t = 0; t < n; ++t) {
    const T d = a[t] - b[t];
    total += d * d;
  }
  return total;
}

// Adds every pair's distance over elements [0, count) of `inputs` into
// `pairs` (i < j, row by row), block by block: the portable path, and the
// one for more than 16 updates.
template <class T, class Distance>
[[gnu::always_inline]] inline void add_pairs(const std::byte* const* inputs, size_t n,
                                             size_t count, double* pairs, Distance distance) {
  constexpr size_t kBlock = kBlockBytes / sizeof(T);
  for (size_t first = 0; first < count; first += kBlock) {
    const size_t m = std::min(kBlock, count - first);
    size_t p = 0;
    for (size_t i = 0; i < n; ++i) {
      const T* a = reinterpret_cast<const T*>(inputs[i]) + first;
      for (size_t j = i + 1; j < n; ++j)
        pairs[p++] += distance(a, reinterpret_cast<const T*>(inputs[j]) + first, m);
    }
  }
}

#if defined(__x86_64__)
#pragma GCC push_options
#pragma GCC target("avx2,fma")
// n known at compile time (2..16): one vector of coordinates of every update
// is loaded (n streams read in step, which the prefetchers follow: a 4 KiB
// block of each update in turn waited on memory at every page, 3 ns per
// coordinate against 1.2 from cache), and every pair's difference squared
// into its own vector sum, each sum flushed to double every 1024 lanes.
template <size_t N>
constexpr auto pair_list() {
  std::array<std::pair<uint8_t, uint8_t>, N * (N - 1) / 2> out{};
  size_t p = 0;
  for (size_t i = 0; i < N; ++i)
    for (size_t j = i + 1; j < N; ++j) out[p++] = {uint8_t(i), uint8_t(j)};
  return out;
}

template <class Ops, size_t N>
void add_pairs_fixed(const std::byte* const* inputs, size_t count, double* pairs) {
  using T = typename Ops::T;
  using V = typename Ops::V;
  static constexpr auto list = pair_list<N>();
  constexpr size_t kFlush = 1024;
  const T* x[N];
  for (size_t k = 0; k < N; ++k) x[k] = reinterpret_cast<const T*>(inputs[k]);
  const size_t whole = count - count % Ops::kLanes;
  size_t t = 0;
  while (t < whole) {
    V sum[list.size()];
    for (V& s : sum) s = Ops::zero();
    for (const size_t end = std::min(whole, t + kFlush); t < end; t += Ops::kLanes) {
      V v[N];
      for (size_t k = 0; k < N; ++k) v[k] = Ops::load(x[k] + t);
      [&]<size_t... P>(std::index_sequence<P...>) {
        ((void)[&](V d) { sum[P] = Ops::fmadd(d, d, sum[P]); }(
             Ops::sub(v[list[P].first], v[list[P].second])),
         ...);
      }(std::make_index_sequence<list.size()>{});
    }
    for (size_t p = 0; p < list.size(); ++p) pairs[p] += Ops::sum(sum[p]);
  }
  for (size_t p = 0; p < list.size(); ++p)
    pairs[p] += squared_distance(x[list[p].first] + t, x[list[p].second] + t, count - t);
}

template <class Ops>
void add_pairs_avx2(const std::byte* const* inputs, size_t n, size_t count, double* pairs) {
  switch (n) {
#define FLARE_FIXED_CASE(N) \
  case N: return add_pairs_fixed<Ops, N>(inputs, count, pairs);
    FLARE_FIXED_CASE(2) FLARE_FIXED_CASE(3) FLARE_FIXED_CASE(4) FLARE_FIXED_CASE(5)
    FLARE_FIXED_CASE(6) FLARE_FIXED_CASE(7) FLARE_FIXED_CASE(8) FLARE_FIXED_CASE(9)
    FLARE_FIXED_CASE(10) FLARE_FIXED_CASE(11) FLARE_FIXED_CASE(12) FLARE_FIXED_CASE(13)
    FLARE_FIXED_CASE(14) FLARE_FIXED_CASE(15) FLARE_FIXED_CASE(16)
#undef FLARE_FIXED_CASE
    default:
      add_pairs<typename Ops::T>(inputs, n, count, pairs, &squared_distance<typename Ops::T>);
  }
}
#pragma GCC pop_options
#endif

template <class T>
void add_pairs_of(const std::byte* const* inputs, size_t n, size_t count, double* pairs) {
#if defined(__x86_64__)
  if (has_avx2_fma()) {
    if constexpr (sizeof(T) == sizeof(float))
      return add_pairs_avx2<Avx2Float>(inputs, n, count, pairs);
    else
      return add_pairs_avx2<Avx2Double>(inputs, n, count, pairs);
  }
#endif
  add_pairs<T>(inputs, n, count, pairs, &squared_distance<T>);
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
          add_pairs_of<float>(inputs.data(), n, b - a, pairs);
        else
          add_pairs_of<double>(inputs.data(), n, b - a, pairs);
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
