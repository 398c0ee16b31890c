#include "krum_selection.hpp"

#include <algorithm>
#include <numeric>

namespace robust {

std::vector<double> krum_scores(const DistanceMatrix& d, std::span<const size_t> candidates,
                                size_t f) {
  const size_t r = candidates.size();
  const size_t nearest = r < 2 ? 0 : std::min(r - 1, r >= f + 3 ? r - f - 2 : size_t{1});
  std::vector<double> scores, others;
  scores.reserve(r);
  for (size_t i : candidates) {
    others.clear();
    for (size_t j : candidates)
      if (j != i) others.push_back(d.at(i, j));
    std::partial_sort(others.begin(), others.begin() + nearest, others.end());
    scores.push_back(std::accumulate(others.begin(), others.begin() + nearest, 0.0));
  }
  return scores;
}

std::vector<size_t> krum_best(const DistanceMatrix& d, std::span<const size_t> candidates,
                              size_t f, size_t m) {
  const std::vector<double> scores = krum_scores(d, candidates, f);
  std::vector<size_t> order(candidates.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  std::vector<size_t> best;
  for (size_t k = 0; k < std::min(m, order.size()); ++k) best.push_back(candidates[order[k]]);
  return best;
}

std::vector<size_t> bulyan_selection(const DistanceMatrix& d, size_t f) {
  std::vector<size_t> left(d.n);
  std::iota(left.begin(), left.end(), size_t{0});
  std::vector<size_t> chosen;
  const size_t theta = d.n - 2 * f;
  while (chosen.size() < theta) {
    const size_t pick = krum_best(d, left, f, 1).front();
    chosen.push_back(pick);
    left.erase(std::find(left.begin(), left.end(), pick));
  }
  return chosen;
}

}  // namespace robust
