// The aggregators' shared flat-buffer arithmetic (plugins/aggregators/common),
// on sizes that are not multiples of a vector or a chunk, with more threads
// than cores, against float64 references.
#include "flat_math.hpp"
#include "parallel_chunks.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <mutex>
#include <numeric>
#include <random>
#include <vector>

#include <doctest/doctest.h>

using namespace flare::agg;

namespace {

// Sets the thread limit for one test and restores the default after it.
struct Threads {
  explicit Threads(size_t n) { set_max_threads(n); }
  ~Threads() { set_max_threads(0); }
};

// Values over many magnitudes and both signs, so sums cancel.
std::vector<float> mixed_values(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> value(0.0f, 1.0f);
  std::uniform_int_distribution<int> exponent(-12, 12);
  std::vector<float> x(n);
  for (auto& v : x) v = std::ldexp(value(rng), exponent(rng));
  return x;
}

// Half a float32 ulp of the correctly rounded result, plus what the carry's
// own rounding may add (far below a float ulp of the terms' magnitudes).
double allowed_error(double exact, double magnitude) {
  const float r = static_cast<float>(exact);
  const double ulp = std::nextafter(std::fabs(r), std::numeric_limits<float>::infinity()) - std::fabs(r);
  return 0.5 * ulp + 1e-12 * magnitude;
}

// Odd sizes: empty, below a vector, a chunk and a bit, several chunks and a tail.
const size_t kSizes[] = {0, 1, 7, kChunkElements + 3, 3 * kChunkElements + 13};

}  // namespace

TEST_CASE("compensated weighted sum equals the float64 reference to float rounding") {
  const Threads threads(13);
  const double weights[] = {3, 1000, 7.5, 123456, 0.1};
  for (size_t n : kSizes) {
    CAPTURE(n);
    std::vector<std::vector<float>> inputs;
    for (unsigned k = 0; k < 5; ++k) inputs.push_back(mixed_values(n, 100 + k));
    std::vector<float> sum(n), carry(n);
    for (size_t k = 0; k < 5; ++k) {
      if (k == 0) fold_first(sum.data(), carry.data(), inputs[k].data(), weights[k], n);
      else fold(sum.data(), carry.data(), inputs[k].data(), weights[k], n);
    }
    const double total = std::accumulate(std::begin(weights), std::end(weights), 0.0);
    finish(sum.data(), carry.data(), 1.0 / total, n);
    size_t off = 0;
    for (size_t i = 0; i < n; ++i) {
      double exact = 0, magnitude = 0;
      for (size_t k = 0; k < 5; ++k) {
        exact += weights[k] * inputs[k][i];
        magnitude += std::fabs(weights[k] * inputs[k][i]);
      }
      exact /= total;
      if (std::fabs(sum[i] - exact) > allowed_error(exact, magnitude / total)) ++off;
    }
    CHECK(off == 0);
  }
}

TEST_CASE("plain float32 weighted sum is within its documented bound of float64, and undoes") {
  const Threads threads(13);
  const double weights[] = {3, 1000, 7.5, 123456, 0.1};
  const double u = std::ldexp(1.0, -24);
  for (size_t n : kSizes) {
    CAPTURE(n);
    std::vector<std::vector<float>> inputs;
    for (unsigned k = 0; k < 5; ++k) inputs.push_back(mixed_values(n, 100 + k));
    std::vector<float> sum(n);
    for (size_t k = 0; k < 5; ++k) {
      if (k == 0) fold_first(sum.data(), inputs[k].data(), weights[k], n);
      else fold(sum.data(), inputs[k].data(), weights[k], n);
    }
    // Taking the heaviest fold back is a fold with -w: 6 folds in all.
    const std::vector<float> extra = mixed_values(n, 999);
    fold(sum.data(), extra.data(), 5e5, n);
    fold(sum.data(), extra.data(), -5e5, n);
    const double total = std::accumulate(std::begin(weights), std::end(weights), 0.0);
    finish(sum.data(), 1.0 / total, n);
    size_t off = 0, beyond_half_ulp = 0;
    for (size_t i = 0; i < n; ++i) {
      double exact = 0, magnitude = 2 * 5e5 * std::fabs(extra[i]);
      for (size_t k = 0; k < 5; ++k) {
        exact += weights[k] * inputs[k][i];
        magnitude += std::fabs(weights[k] * inputs[k][i]);
      }
      exact /= total;
      // (folds + 2) * u * sum |w x| / sum w: flat_math.hpp's bound.
      if (std::fabs(sum[i] - exact) > (8 * u) * magnitude / total) ++off;
      beyond_half_ulp += std::fabs(sum[i] - exact) > allowed_error(exact, 0);
    }
    CHECK(off == 0);
    // Not the compensated sum under another name: cancellation shows.
    if (n > 1000) CHECK(beyond_half_ulp > 0);
  }
}

TEST_CASE("float64 fold and finish match the plain loop, result in place") {
  const Threads threads(7);
  for (size_t n : kSizes) {
    CAPTURE(n);
    std::vector<double> a(n), b(n);
    for (size_t i = 0; i < n; ++i) a[i] = 0.5 * i, b[i] = 3.0 - i;
    std::vector<double> sum(n);
    fold_first(sum.data(), a.data(), 2.0, n);
    fold(sum.data(), b.data(), 4.0, n);
    finish(sum.data(), sum.data(), 0.25, n);
    size_t off = 0;
    for (size_t i = 0; i < n; ++i) off += sum[i] != (2.0 * a[i] + 4.0 * b[i]) * 0.25;
    CHECK(off == 0);
  }
}

TEST_CASE("all_finite finds one NaN or infinity anywhere, also in the last element") {
  const Threads threads(5);
  for (size_t n : kSizes) {
    if (n == 0) {
      CHECK(all_finite(static_cast<const float*>(nullptr), 0));
      continue;
    }
    CAPTURE(n);
    std::vector<float> x = mixed_values(n, 7);
    std::vector<double> y(x.begin(), x.end());
    CHECK(all_finite(x.data(), n));
    CHECK(all_finite(y.data(), n));
    for (size_t at : {size_t{0}, n / 2, n - 1}) {
      x[at] = std::numeric_limits<float>::quiet_NaN();
      y[at] = -std::numeric_limits<double>::infinity();
      CHECK_FALSE(all_finite(x.data(), n));
      CHECK_FALSE(all_finite(y.data(), n));
      x[at] = y[at] = 1;
    }
  }
}

TEST_CASE("l2_norm matches float64 and gives the same bits for any number of threads") {
  for (size_t n : kSizes) {
    CAPTURE(n);
    const std::vector<float> x = mixed_values(n, 11);
    double squares = 0;
    for (float v : x) squares += static_cast<double>(v) * v;
    set_max_threads(1);
    const double one = l2_norm(x.data(), n);
    set_max_threads(16);
    const double many = l2_norm(x.data(), n);
    set_max_threads(0);
    CHECK(one == many);
    CHECK(one == doctest::Approx(std::sqrt(squares)).epsilon(1e-12));
  }
}

TEST_CASE("for_each_chunk covers the range once, in chunks independent of the threads") {
  for (size_t threads : {1, 2, 16}) {
    CAPTURE(threads);
    const size_t n = 10 * 64 + 5;
    std::vector<int> seen(n, 0);
    std::vector<size_t> firsts;
    std::mutex m;
    for_each_chunk(
        n,
        [&](size_t a, size_t b) {
          for (size_t i = a; i < b; ++i) ++seen[i];
          const std::lock_guard lock(m);
          firsts.push_back(a);
        },
        threads, 64);
    CHECK(std::all_of(seen.begin(), seen.end(), [](int s) { return s == 1; }));
    std::sort(firsts.begin(), firsts.end());
    CHECK(firsts.size() == 11);
    CHECK(firsts.back() == 640);
  }
}

TEST_CASE("for_each_chunk_of covers every segment once, empty ones included, in one region") {
  const std::vector<size_t> sizes = {0, 5, 130, 64};
  for (size_t threads : {1, 3}) {
    CAPTURE(threads);
    std::vector<std::vector<int>> seen;
    for (size_t n : sizes) seen.emplace_back(n, 0);
    std::atomic<int> calls{0};
    for_each_chunk_of(
        sizes,
        [&](size_t s, size_t a, size_t b) {
          for (size_t i = a; i < b; ++i) ++seen[s][i];
          ++calls;
        },
        threads, 64);
    for (const auto& v : seen)
      CHECK(std::all_of(v.begin(), v.end(), [](int x) { return x == 1; }));
    CHECK(calls == 1 + 3 + 1);  // 5 -> 1 chunk, 130 -> 3, 64 -> 1
  }
}
