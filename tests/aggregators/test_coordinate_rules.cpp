// The robust aggregators' shared kernels (plugins/aggregators/robust): the
// sorting network, the tiled coordinate-wise rules against a per-coordinate
// sort, and Krum's scores and Bulyan's selection on a hand-made matrix.
#include "coordinate_rules.hpp"
#include "cpu_features.hpp"
#include "krum_selection.hpp"

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include <doctest/doctest.h>

using namespace robust;

TEST_CASE("the sorting network sorts every 0-1 sequence of up to 16 values") {
  // The 0-1 principle: a comparator network that sorts every sequence of
  // zeros and ones sorts every sequence.
  for (size_t n = 1; n <= 16; ++n) {
    const auto network = sorting_network(n);
    size_t unsorted = 0;
    for (uint32_t bits = 0; bits < (1u << n); ++bits) {
      std::vector<int> v(n);
      for (size_t i = 0; i < n; ++i) v[i] = (bits >> i) & 1;
      for (const auto& [i, j] : network) {
        REQUIRE(i < j);
        REQUIRE(j < n);
        if (v[j] < v[i]) std::swap(v[i], v[j]);
      }
      if (!std::is_sorted(v.begin(), v.end())) ++unsorted;
    }
    CHECK_MESSAGE(unsorted == 0, "n = " << n);
  }
  CHECK(sorting_network(8).size() == 19);  // Batcher's count for 8
}

namespace {

// The rule on one coordinate's values, the obvious way.
template <class T>
T reference(const CoordinateRule& rule, std::vector<T> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  const T median = n % 2 ? v[n / 2] : T(0.5) * v[n / 2 - 1] + T(0.5) * v[n / 2];
  if (rule.rule == Rule::Median) return median;
  size_t first = rule.cut, count = n - 2 * rule.cut;
  if (rule.rule == Rule::ClosestToMedian) {
    // Take the nearest one at a time from either side; the lower on a tie.
    size_t lo = 0;
    while (lo + 1 < n && v[lo + 1] <= median) ++lo;  // the last value <= median
    size_t below = lo + 1, above = lo + 1;          // the window [below, above)
    while (above - below < rule.closest) {
      if (below == 0) { ++above; continue; }
      if (above == n) { --below; continue; }
      if (median - v[below - 1] <= v[above] - median) --below; else ++above;
    }
    first = below;
    count = rule.closest;
  }
  T sum = v[first];
  for (size_t k = first + 1; k < first + count; ++k) sum += v[k];
  return sum / static_cast<T>(count);
}

template <class T>
size_t mismatches(const CoordinateRule& rule, size_t count, std::mt19937& random) {
  std::uniform_int_distribution<int> small(-6, 6);  // many ties
  std::vector<std::vector<T>> inputs(rule.n, std::vector<T>(count));
  for (auto& row : inputs)
    for (auto& x : row) x = static_cast<T>(small(random)) * T(0.25);
  std::vector<const T*> pointers;
  for (const auto& row : inputs) pointers.push_back(row.data());
  std::vector<T> out(count);
  CoordinateKernel(rule).apply(pointers.data(), out.data(), count);
  size_t wrong = 0;
  for (size_t c = 0; c < count; ++c) {
    std::vector<T> v;
    for (const auto& row : inputs) v.push_back(row[c]);
    if (out[c] != reference(rule, v)) ++wrong;
  }
  return wrong;
}

}  // namespace

TEST_CASE("the coordinate rules match a per-coordinate sort, ties and a partial vector included") {
  std::mt19937 random(3);
  // Registers (n up to 16, then tiles), then the portable tiles for every n
  // as on a CPU without AVX2.
  for (const bool registers : {true, false}) {
    use_avx2_fma(registers);
    for (size_t n = 1; n <= 18; ++n) {
      std::vector<CoordinateRule> rules = {{Rule::Median, n}};
      for (size_t cut = 1; 2 * cut < n; ++cut) rules.push_back({Rule::TrimmedMean, n, cut});
      for (size_t k = 1; k <= n; ++k) rules.push_back({Rule::ClosestToMedian, n, 0, k});
      for (const CoordinateRule& rule : rules) {
        CHECK_MESSAGE(mismatches<float>(rule, 1003, random) == 0,
                      "float n = " << n << " rule " << int(rule.rule) << " cut " << rule.cut
                                   << " closest " << rule.closest << " registers " << registers);
        CHECK_MESSAGE(mismatches<double>(rule, 333, random) == 0,
                      "double n = " << n << " rule " << int(rule.rule) << " cut " << rule.cut
                                    << " closest " << rule.closest << " registers " << registers);
      }
    }
  }
  use_avx2_fma(true);
}

TEST_CASE("the median of two huge values does not overflow") {
  const float big = 3e38f;
  const float a[] = {big}, b[] = {big};
  const float* inputs[] = {a, b};
  float out = 0;
  CoordinateKernel({Rule::Median, 2}).apply(inputs, &out, 1);
  CHECK(out == big);
}

TEST_CASE("krum scores sum the n - f - 2 nearest distances and pick the lowest, earlier on ties") {
  // Points on a line at 0, 1, 3, 10; squared distances.
  const double p[] = {0, 1, 3, 10};
  std::vector<double> d(16);
  for (size_t i = 0; i < 4; ++i)
    for (size_t j = 0; j < 4; ++j) d[i * 4 + j] = (p[i] - p[j]) * (p[i] - p[j]);
  const DistanceMatrix m{d, 4};
  const std::vector<size_t> all = {0, 1, 2, 3};
  // f = 0: 2 nearest. 0: 1 + 9; 1: 1 + 4; 2: 4 + 9; 3: 49 + 81.
  CHECK(krum_scores(m, all, 0) == std::vector<double>{10, 5, 13, 130});
  CHECK(krum_best(m, all, 0, 2) == std::vector<size_t>{1, 0});
  // f = 1: max(1, 4 - 1 - 2) = 1 nearest: 0 and 1 tie at 1, 0 first.
  CHECK(krum_scores(m, all, 1) == std::vector<double>{1, 1, 4, 49});
  CHECK(krum_best(m, all, 1, 1) == std::vector<size_t>{0});
  // Bulyan, f = 0: every point, chosen by Krum one by one.
  CHECK(bulyan_selection(m, 0) == std::vector<size_t>{1, 0, 2, 3});
}
