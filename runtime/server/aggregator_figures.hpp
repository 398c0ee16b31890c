// The figures an aggregator reports about its rounds (host->report_metric
// with step = the round: a DP accountant's epsilon, how many updates were
// clipped or selected), collected from any of its threads until the round's
// model is made, then told with it (metrics.jsonl, the terminal, the run's
// summary).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string_view>

#include <nlohmann/json.hpp>

namespace flare::server {

class AggregatorFigures {
 public:
  // Any thread. A figure reported twice for a round keeps its last value;
  // one that is not a finite number is dropped (JSON has no NaN).
  void report(std::string_view name, double value, int64_t round);
  // The figures of `round` (an object, empty when none), forgetting those of
  // every round up to it.
  nlohmann::json take(int64_t round);

 private:
  std::mutex mutex_;
  std::map<int64_t, nlohmann::json> by_round_;
};

}  // namespace flare::server
