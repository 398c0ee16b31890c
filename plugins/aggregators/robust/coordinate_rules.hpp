// Coordinate-wise rules over n updates: for each coordinate, the n values
// are sorted by a sorting network applied to a vector of coordinates at
// once (each compare-exchange a min and a max of vectors; n from 2 to 16 in
// AVX2 registers, other n in rows of an L1 tile), instead of a
// per-coordinate selection: branch-free and vectorised. Then
//   median:            the middle value, or the mean of the middle two (n even);
//   trimmed mean:      the mean of the values left after `cut` from each end;
//   closest to median: the mean of the `closest` values nearest the median
//                      (Bulyan's second step; of equally near values the
//                      lower wins).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "kept_round.hpp"

namespace robust {

// The kept round (KeptRound, ResultModel, ...) is common/kept_round.hpp's.
using namespace flare::agg;

// Batcher's odd-even merge sort for any n: O(n log^2 n) compare-exchanges
// (i, j), i < j, after which position i holds the i-th smallest.
std::vector<std::pair<uint32_t, uint32_t>> sorting_network(size_t n);

enum class Rule { Median, TrimmedMean, ClosestToMedian };

struct CoordinateRule {
  Rule rule = Rule::Median;
  size_t n = 1;        // values per coordinate
  size_t cut = 0;      // TrimmedMean: dropped from each end (2 * cut < n)
  size_t closest = 1;  // ClosestToMedian: how many are averaged (1..n)
};

// The rule applied to coordinates [0, count) of inputs[0..n), on the calling
// thread; `out` must not overlap them.
class CoordinateKernel {
 public:
  explicit CoordinateKernel(CoordinateRule rule);
  void apply(const float* const* inputs, float* out, size_t count) const;
  void apply(const double* const* inputs, double* out, size_t count) const;
  const CoordinateRule& rule() const { return rule_; }

 private:
  CoordinateRule rule_;
  std::vector<std::pair<uint32_t, uint32_t>> network_;
};

// The rule over every float tensor of the listed updates (`which`, all of
// them when empty), on all cores, into `result`; each block's pages are
// handed back once read. Integer tensors are left to the caller.
void apply_coordinatewise(const KeptRound& round, std::span<const size_t> which,
                          const CoordinateKernel& kernel, ResultModel& result,
                          const flare::Host& host);

}  // namespace robust
