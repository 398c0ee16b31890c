// Krum's choice of updates from their pairwise squared distances
// (Blanchard et al. 2017, "Machine Learning with Adversaries: Byzantine
// Tolerant Gradient Descent"), as Flower's aggregate_krum computes it, and
// Bulyan's iterated Krum (El Mhamdi et al. 2018).
#pragma once

#include <cstddef>
#include <span>
#include <vector>

namespace robust {

// distances: n x n, row-major (pairwise_squared_distances).
struct DistanceMatrix {
  std::span<const double> distances;
  size_t n;
  double at(size_t i, size_t j) const { return distances[i * n + j]; }
};

// Each candidate's score: the sum of its squared distances to its
// max(1, r - f - 2) nearest other candidates (r candidates; at most r - 1).
std::vector<double> krum_scores(const DistanceMatrix& d, std::span<const size_t> candidates,
                                size_t f);

// The m candidates of lowest score, best first; of equal scores the earlier
// candidate (arrival order) wins.
std::vector<size_t> krum_best(const DistanceMatrix& d, std::span<const size_t> candidates,
                              size_t f, size_t m);

// Bulyan's selection set: theta = n - 2f updates, each the Krum pick among
// those not chosen yet, in the order chosen.
std::vector<size_t> bulyan_selection(const DistanceMatrix& d, size_t f);

}  // namespace robust
