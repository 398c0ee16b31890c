#include "coordinate_rules.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>

#include "avx2_ops.hpp"
#include "cpu_features.hpp"
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

// Batcher's odd-even merge sort for any n: calls emit(i, j) for each
// compare-exchange in order.
template <class Emit>
constexpr void batcher(size_t n, Emit&& emit) {
  for (size_t p = 1; p < n; p <<= 1)
    for (size_t k = p; k >= 1; k >>= 1)
      for (size_t j = k % p; j + k < n; j += 2 * k)
        for (size_t i = 0; i < std::min(k, n - j - k); ++i)
          if ((i + j) / (2 * p) == (i + j + k) / (2 * p)) emit(i + j, i + j + k);
}

// ---- n known at compile time (2..16), AVX2: the n values of a vector of
// coordinates stay in registers through the whole network, one vminps and
// one vmaxps per compare-exchange (GCC turns the same on its own vector
// types into compare-and-blend, 3 instructions, and keeps rows in memory
// when n is a run-time value). A CPU without AVX2 and FMA takes the tiles
// below.
constexpr size_t kMaxFixed = 16;

template <size_t N>
constexpr size_t fixed_network_size() {
  size_t count = 0;
  batcher(N, [&](size_t, size_t) { ++count; });
  return count;
}

template <size_t N>
constexpr auto fixed_network() {
  std::array<std::pair<uint8_t, uint8_t>, fixed_network_size<N>()> out{};
  size_t c = 0;
  batcher(N, [&](size_t i, size_t j) {
    out[c++] = {static_cast<uint8_t>(i), static_cast<uint8_t>(j)};
  });
  return out;
}

#if defined(__x86_64__)
#pragma GCC push_options
#pragma GCC target("avx2,fma")

// The rules on sorted vectors v[0..N), each the same operations in the same
// order as its tiled twin below (the tests compare them bit for bit).
template <class Ops, size_t N>
[[gnu::always_inline]] inline typename Ops::V fixed_median(const typename Ops::V* v) {
  if constexpr (N % 2)
    return v[N / 2];
  else
    return Ops::splat(0.5) * v[N / 2 - 1] + Ops::splat(0.5) * v[N / 2];
}

template <class Ops, size_t N>
[[gnu::always_inline]] inline typename Ops::V fixed_trimmed_mean(const typename Ops::V* v,
                                                                 size_t cut) {
  typename Ops::V sum = v[0];  // rows cut .. N - cut - 1, added from the lowest
  [&]<size_t... R>(std::index_sequence<R...>) {
    ((R == cut ? void(sum = v[R]) : R > cut && R + cut < N ? void(sum += v[R]) : void()), ...);
  }(std::make_index_sequence<N>{});
  return sum / Ops::splat(static_cast<typename Ops::T>(N - 2 * cut));
}

// closest_to_median's window [A, A + k), the rows unrolled (N and A
// constant, k not): all in registers, masks instead of branches per lane.
template <class Ops, size_t N, size_t A, size_t... R>
[[gnu::always_inline]] inline void fixed_window(const typename Ops::V* v, size_t k,
                                                typename Ops::V m, typename Ops::V& found,
                                                typename Ops::V& result,
                                                std::index_sequence<R...>) {
  using V = typename Ops::V;
  if (A + k > N) return;
  const V infinity = Ops::splat(std::numeric_limits<typename Ops::T>::infinity());
  V sum = v[A], hi = v[A], above = infinity;
  ((R > A && R < A + k ? void((sum += v[R], hi = v[R]))
                       : R > A && R == A + k ? void(above = v[R] - m) : void()),
   ...);
  V below = infinity;
  if constexpr (A > 0) below = m - v[A - 1];
  const V inside = Ops::max(Ops::abs(v[A] - m), Ops::abs(hi - m));
  const V nearest = Ops::both(Ops::less_equal(inside, below), Ops::less_equal(inside, above));
  result = Ops::select(Ops::but_not(nearest, found), sum, result);
  found = Ops::either(found, nearest);
}

template <class Ops, size_t N, size_t... A>
[[gnu::always_inline]] inline typename Ops::V fixed_closest_to_median(const typename Ops::V* v,
                                                                      size_t k,
                                                                      std::index_sequence<A...>) {
  const typename Ops::V m = fixed_median<Ops, N>(v);
  typename Ops::V found = Ops::zero(), result = Ops::zero();
  (fixed_window<Ops, N, A>(v, k, m, found, result, std::make_index_sequence<N>{}), ...);
  return result / Ops::splat(static_cast<typename Ops::T>(k));
}

// Median, trimmed mean or closest to the median of one vector of
// coordinates starting at `first`.
template <class Ops, size_t N>
[[gnu::always_inline]] inline void fixed_vector(const CoordinateRule& rule,
                                                const typename Ops::T* const* inputs,
                                                size_t first, typename Ops::T* out) {
  using V = typename Ops::V;
  static constexpr auto network = fixed_network<N>();
  V v[N];
  for (size_t k = 0; k < N; ++k) v[k] = Ops::load(inputs[k] + first);
  [&]<size_t... C>(std::index_sequence<C...>) {
    ((void)[&](V& lo, V& hi) {
       const V a = lo, b = hi;
       lo = Ops::min(b, a);
       hi = Ops::max(a, b);
     }(v[network[C].first], v[network[C].second]),
     ...);
  }(std::make_index_sequence<network.size()>{});
  V result;
  switch (rule.rule) {
    case Rule::Median: result = fixed_median<Ops, N>(v); break;
    case Rule::TrimmedMean: result = fixed_trimmed_mean<Ops, N>(v, rule.cut); break;
    case Rule::ClosestToMedian:
      result = fixed_closest_to_median<Ops, N>(v, rule.closest, std::make_index_sequence<N>{});
      break;
  }
  Ops::store(out + first, result);
}

template <class Ops, size_t N>
size_t fixed_all(const CoordinateRule& rule, const typename Ops::T* const* inputs,
                 typename Ops::T* out, size_t count) {
  constexpr size_t lanes = sizeof(typename Ops::V) / sizeof(typename Ops::T);
  size_t first = 0;
  for (; first + lanes <= count; first += lanes) fixed_vector<Ops, N>(rule, inputs, first, out);
  return first;
}

// Coordinates done with n in registers: a prefix of whole vectors, 0 when
// n has no fixed version.
template <class Ops>
size_t fixed_prefix_avx2(const CoordinateRule& rule, const typename Ops::T* const* inputs,
                         typename Ops::T* out, size_t count) {
  switch (rule.n) {
#define FLARE_FIXED_CASE(N) \
  case N: return fixed_all<Ops, N>(rule, inputs, out, count);
    FLARE_FIXED_CASE(2) FLARE_FIXED_CASE(3) FLARE_FIXED_CASE(4) FLARE_FIXED_CASE(5)
    FLARE_FIXED_CASE(6) FLARE_FIXED_CASE(7) FLARE_FIXED_CASE(8) FLARE_FIXED_CASE(9)
    FLARE_FIXED_CASE(10) FLARE_FIXED_CASE(11) FLARE_FIXED_CASE(12) FLARE_FIXED_CASE(13)
    FLARE_FIXED_CASE(14) FLARE_FIXED_CASE(15) FLARE_FIXED_CASE(16)
#undef FLARE_FIXED_CASE
    default: return 0;
  }
}
static_assert(kMaxFixed == 16, "fixed_prefix_avx2 has a case per n up to kMaxFixed");

size_t fixed_prefix(const CoordinateRule& rule, const float* const* inputs, float* out,
                    size_t count) {
  return fixed_prefix_avx2<Avx2Float>(rule, inputs, out, count);
}
size_t fixed_prefix(const CoordinateRule& rule, const double* const* inputs, double* out,
                    size_t count) {
  return fixed_prefix_avx2<Avx2Double>(rule, inputs, out, count);
}
#pragma GCC pop_options
#else
template <class T>
size_t fixed_prefix(const CoordinateRule&, const T* const*, T*, size_t) { return 0; }
#endif

// ---- any n, any rule: tiles of coordinates in an L1 scratch, one row per value.

template <class T>
[[gnu::always_inline]] inline void compare_exchange_rows(T* __restrict lo, T* __restrict hi) {
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
    compare_exchange_rows(scratch + i * kTile<T>, scratch + j * kTile<T>);
  switch (rule.rule) {
    case Rule::Median: median_of_sorted(scratch, rule.n, out); break;
    case Rule::TrimmedMean: mean_of_rows(scratch, rule.cut, rule.n - 2 * rule.cut, out); break;
    case Rule::ClosestToMedian: closest_to_median(scratch, rule.n, rule.closest, out); break;
  }
}

template <class T>
[[gnu::always_inline]] inline void apply_tiles(const CoordinateRule& rule, const Network& network,
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

template <class T>
[[gnu::always_inline]] inline void apply_all(const CoordinateRule& rule, const Network& network,
                                             const T* const* inputs, T* out, size_t count) {
  const size_t done = has_avx2_fma() ? fixed_prefix(rule, inputs, out, count) : 0;
  if (done == count) return;
  std::vector<const T*> rest(inputs, inputs + rule.n);
  for (const T*& p : rest) p += done;
  apply_tiles(rule, network, rest.data(), out + done, count - done);
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
  batcher(n, [&](size_t i, size_t j) {
    out.emplace_back(static_cast<uint32_t>(i), static_cast<uint32_t>(j));
  });
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
