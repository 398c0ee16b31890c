#include "server/aggregator_figures.hpp"

#include <cmath>
#include <string>

#include "common/printable_text.hpp"

namespace flare::server {

void AggregatorFigures::report(std::string_view name, double value, int64_t round) {
  if (!std::isfinite(value)) return;
  std::lock_guard lock(mutex_);
  by_round_[round][common::printable(name.substr(0, 64))] = value;
}

nlohmann::json AggregatorFigures::take(int64_t round) {
  std::lock_guard lock(mutex_);
  nlohmann::json figures = nlohmann::json::object();
  if (const auto it = by_round_.find(round); it != by_round_.end()) figures = it->second;
  by_round_.erase(by_round_.begin(), by_round_.upper_bound(round));
  return figures;
}

}  // namespace flare::server
