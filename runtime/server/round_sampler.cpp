#include "server/round_sampler.hpp"

#include <algorithm>
#include <numeric>
#include <sstream>
#include <stdexcept>

namespace flare::server {

std::vector<std::string> RoundSampler::sample(const std::vector<std::string>& candidates,
                                              size_t count) {
  if (count >= candidates.size()) return candidates;
  // A partial Fisher-Yates over the indices; the chosen ones keep the
  // candidates' order, so the sample reads the same however it was drawn.
  std::vector<size_t> index(candidates.size());
  std::iota(index.begin(), index.end(), 0);
  for (size_t i = 0; i < count; ++i) {
    std::uniform_int_distribution<size_t> pick(i, index.size() - 1);
    std::swap(index[i], index[pick(rng_)]);
  }
  index.resize(count);
  std::sort(index.begin(), index.end());
  std::vector<std::string> chosen;
  for (size_t i : index) chosen.push_back(candidates[i]);
  return chosen;
}

std::string RoundSampler::state() const {
  std::ostringstream out;
  out << rng_;
  return out.str();
}

void RoundSampler::restore(const std::string& state) {
  std::istringstream in(state);
  std::mt19937_64 rng;
  in >> rng;
  if (in.fail()) throw std::invalid_argument("not a sampling RNG state");
  rng_ = rng;
}

}  // namespace flare::server
