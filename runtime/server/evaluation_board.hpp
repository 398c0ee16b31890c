// Collects the sites' evaluations of each global model and turns them into the
// global figures (sample-weighted means) that rank models for "best".
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

namespace flare::server {

// Flat metric names: {"validation": {"accuracy": a}} becomes "val_acc";
// "loss" keeps its name ("val_loss", "test_loss").
nlohmann::json flatten_evaluation(const nlohmann::json& eval);

// True when a larger value of `metric` is better (losses are the exception).
bool higher_is_better(const std::string& metric);

// Which way the key metric ranks models ([server] key_metric_mode): Auto
// guesses from the name (higher_is_better), for the usual accuracy and loss.
enum class KeyMetricMode { Auto, Max, Min };

// "auto", "max" or "min" (the job spec's values, checked by the parser).
KeyMetricMode key_metric_mode_named(const std::string& name);

class EvaluationBoard {
 public:
  explicit EvaluationBoard(std::string key_metric, KeyMetricMode mode = KeyMetricMode::Auto);

  // Records one site's evaluation (the JSON the worker sends) of global model
  // `model_round`. Returns the global figures once `expected_sites` sites have
  // reported for that model, nullopt before.
  std::optional<nlohmann::json> record(int64_t model_round, const std::string& site,
                                       const nlohmann::json& eval, size_t expected_sites);

  // The global figures of whichever sites reported for `model_round` (a
  // round closed without its stragglers), then forgets them; nullopt when none did.
  std::optional<nlohmann::json> close(int64_t model_round);

  // Whether `figures` beat every model seen so far on the key metric (and
  // remembers it if so).
  bool improves_best(const nlohmann::json& figures);
  // The best key-metric value so far, and back (a resumed job's checkpoint).
  std::optional<double> best() const { return best_; }
  void restore_best(std::optional<double> best) { best_ = best; }
  const std::string& key_metric() const { return key_metric_; }

 private:
  struct Pending {
    std::set<std::string> sites;
    std::map<std::string, double> weighted_sum;  // metric -> sum(value * samples)
    std::map<std::string, double> samples;       // metric -> sum(samples)
  };
  std::string key_metric_;
  bool higher_is_better_;
  std::map<int64_t, Pending> pending_;
  std::optional<double> best_;
};

}  // namespace flare::server
