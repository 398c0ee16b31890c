#include "flat_math.hpp"

#include <sched.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "parallel_chunks.hpp"
#include "vector_clones.hpp"

namespace flare::agg {
namespace one_thread {

// The element loops, on one chunk. No -ffast-math anywhere near them: the
// compensation relies on IEEE rounding of every operation.
FLARE_VECTOR_CLONES
void fold_first(float* __restrict sum, float* __restrict carry, const float* __restrict x, double w,
                size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const double product = w * static_cast<double>(x[i]);
    const float rounded = static_cast<float>(product);
    sum[i] = rounded;
    carry[i] = static_cast<float>(product - static_cast<double>(rounded));
  }
}

FLARE_VECTOR_CLONES
void fold(float* __restrict sum, float* __restrict carry, const float* __restrict x, double w,
          size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const double product = w * static_cast<double>(x[i]);
    const float p = static_cast<float>(product);
    const float p_error = static_cast<float>(product - static_cast<double>(p));
    // Knuth's TwoSum: s + p == t + e exactly, without branching on magnitudes.
    const float s = sum[i];
    const float t = s + p;
    const float p_part = t - s;
    const float e = (s - (t - p_part)) + (p - p_part);
    sum[i] = t;
    carry[i] += e + p_error;
  }
}

FLARE_VECTOR_CLONES
void finish(float* __restrict sum, const float* __restrict carry, double scale, size_t n) {
  for (size_t i = 0; i < n; ++i)
    sum[i] = static_cast<float>((static_cast<double>(sum[i]) + carry[i]) * scale);
}

// Plain float32 arithmetic: in double (one rounding per fold instead of
// three) the conversions made the loop compute-bound at half the speed of a
// copy from cache, where the interleaved streamed fold runs.
FLARE_VECTOR_CLONES
void fold_first(float* __restrict sum, const float* __restrict x, double w, size_t n) {
  const float weight = static_cast<float>(w);
  for (size_t i = 0; i < n; ++i) sum[i] = weight * x[i];
}

FLARE_VECTOR_CLONES
void fold(float* __restrict sum, const float* __restrict x, double w, size_t n) {
  const float weight = static_cast<float>(w);
  // 4 vectors per turn of the loop (GCC's 1 by default): +3-5% for the
  // interleaved streamed fold, where this loop is the limit (RESULTS.md).
#pragma GCC unroll 4
  for (size_t i = 0; i < n; ++i) sum[i] += weight * x[i];
}

FLARE_VECTOR_CLONES
void finish(float* sum, double scale, size_t n) {
  for (size_t i = 0; i < n; ++i) sum[i] = static_cast<float>(static_cast<double>(sum[i]) * scale);
}

FLARE_VECTOR_CLONES
void fold_first(double* __restrict sum, const double* __restrict x, double w, size_t n) {
  for (size_t i = 0; i < n; ++i) sum[i] = w * x[i];
}

FLARE_VECTOR_CLONES
void fold(double* __restrict sum, const double* __restrict x, double w, size_t n) {
  for (size_t i = 0; i < n; ++i) sum[i] += w * x[i];
}

// `out` may be `sum` (no __restrict).
FLARE_VECTOR_CLONES
void finish(double* out, const double* sum, double scale, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = sum[i] * scale;
}

// Exponent bits all set means NaN or infinity: (exponent + 1) then carries
// into the bit above it. Integer shifts and ORs vectorise (no early exit).
template <class Bits, class T, int MantissaBits, Bits ExponentMask>
bool all_finite_chunk(const T* x, size_t n) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(x);
  Bits bad = 0;
  for (size_t i = 0; i < n; ++i) {
    Bits b;
    std::memcpy(&b, bytes + i * sizeof(T), sizeof(T));
    const Bits exponent = (b >> MantissaBits) & ExponentMask;
    bad |= (exponent + 1) & (ExponentMask + 1);
  }
  return bad == 0;
}

FLARE_VECTOR_CLONES
bool all_finite(const float* x, size_t n) {
  return all_finite_chunk<uint32_t, float, 23, 0xffu>(x, n);
}

FLARE_VECTOR_CLONES
bool all_finite(const double* x, size_t n) {
  return all_finite_chunk<uint64_t, double, 52, 0x7ffu>(x, n);
}

}  // namespace one_thread

namespace {

std::atomic<size_t> thread_limit{0};

FLARE_VECTOR_CLONES
double sum_of_squares(const float* x, size_t n) {
  double total = 0;
  for (size_t i = 0; i < n; ++i) total += static_cast<double>(x[i]) * x[i];
  return total;
}

template <class Work>
void chunked(size_t n, Work&& work) {
  for_each_chunk(n, work, max_threads());
}

template <class T, class Check>
bool all_chunks_finite(const T* x, size_t n, Check check) {
  std::atomic<bool> finite{true};
  chunked(n, [&](size_t a, size_t b) {
    if (finite.load(std::memory_order_relaxed) && !check(x + a, b - a))
      finite.store(false, std::memory_order_relaxed);
  });
  return finite.load();
}

}  // namespace

size_t usable_cpus() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
    return static_cast<size_t>(CPU_COUNT(&set));
  const unsigned n = std::thread::hardware_concurrency();
  return n ? n : 1;
}

void set_max_threads(size_t threads) { thread_limit.store(threads, std::memory_order_relaxed); }
size_t max_threads() { return thread_limit.load(std::memory_order_relaxed); }

void fold_first(float* sum, float* carry, const float* x, double weight, size_t n) {
  chunked(n, [&](size_t a, size_t b) {
    one_thread::fold_first(sum + a, carry + a, x + a, weight, b - a);
  });
}
void fold(float* sum, float* carry, const float* x, double weight, size_t n) {
  chunked(n,
          [&](size_t a, size_t b) { one_thread::fold(sum + a, carry + a, x + a, weight, b - a); });
}
void finish(float* sum, const float* carry, double scale, size_t n) {
  chunked(n, [&](size_t a, size_t b) { one_thread::finish(sum + a, carry + a, scale, b - a); });
}
void fold_first(float* sum, const float* x, double weight, size_t n) {
  chunked(n, [&](size_t a, size_t b) { one_thread::fold_first(sum + a, x + a, weight, b - a); });
}
void fold(float* sum, const float* x, double weight, size_t n) {
  chunked(n, [&](size_t a, size_t b) { one_thread::fold(sum + a, x + a, weight, b - a); });
}
void finish(float* sum, double scale, size_t n) {
  chunked(n, [&](size_t a, size_t b) { one_thread::finish(sum + a, scale, b - a); });
}
void fold_first(double* sum, const double* x, double weight, size_t n) {
  chunked(n, [&](size_t a, size_t b) { one_thread::fold_first(sum + a, x + a, weight, b - a); });
}
void fold(double* sum, const double* x, double weight, size_t n) {
  chunked(n, [&](size_t a, size_t b) { one_thread::fold(sum + a, x + a, weight, b - a); });
}
void finish(double* out, const double* sum, double scale, size_t n) {
  chunked(n, [&](size_t a, size_t b) { one_thread::finish(out + a, sum + a, scale, b - a); });
}
bool all_finite(const float* x, size_t n) {
  return all_chunks_finite(x, n,
                           [](const float* p, size_t k) { return one_thread::all_finite(p, k); });
}
bool all_finite(const double* x, size_t n) {
  return all_chunks_finite(x, n,
                           [](const double* p, size_t k) { return one_thread::all_finite(p, k); });
}

double l2_norm(const float* x, size_t n) {
  std::vector<double> partial((n + kChunkElements - 1) / kChunkElements, 0.0);
  chunked(n,
          [&](size_t a, size_t b) { partial[a / kChunkElements] = sum_of_squares(x + a, b - a); });
  double total = 0;
  for (double p : partial) total += p;
  return std::sqrt(total);
}

}  // namespace flare::agg
