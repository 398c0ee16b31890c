#include "server/evaluation_board.hpp"

#include <stdexcept>

namespace flare::server {

namespace {

std::string short_split(const std::string& split) {
  if (split == "validation") return "val";
  return split;
}

std::string short_metric(const std::string& metric) {
  if (metric == "accuracy") return "acc";
  return metric;
}

}  // namespace

nlohmann::json flatten_evaluation(const nlohmann::json& eval) {
  nlohmann::json flat = nlohmann::json::object();
  for (const auto& [split, metrics] : eval.items()) {
    if (!metrics.is_object()) continue;
    for (const auto& [name, value] : metrics.items()) {
      if (value.is_number()) flat[short_split(split) + "_" + short_metric(name)] = value;
    }
  }
  return flat;
}

bool higher_is_better(const std::string& metric) {
  return metric.find("loss") == std::string::npos;
}

KeyMetricMode key_metric_mode_named(const std::string& name) {
  if (name == "max") return KeyMetricMode::Max;
  if (name == "min") return KeyMetricMode::Min;
  if (name == "auto") return KeyMetricMode::Auto;
  throw std::invalid_argument("server.key_metric_mode: expected \"auto\", \"max\" or \"min\", found \"" +
                              name + "\"");
}

EvaluationBoard::EvaluationBoard(std::string key_metric, KeyMetricMode mode)
    : key_metric_(std::move(key_metric)),
      higher_is_better_(mode == KeyMetricMode::Auto ? higher_is_better(key_metric_)
                                                    : mode == KeyMetricMode::Max) {}

std::optional<nlohmann::json> EvaluationBoard::record(int64_t model_round,
                                                      const std::string& site,
                                                      const nlohmann::json& eval,
                                                      size_t expected_sites) {
  Pending& p = pending_[model_round];
  if (!p.sites.insert(site).second) return std::nullopt;  // a repeat counts once
  for (const auto& [split, metrics] : eval.items()) {
    if (!metrics.is_object()) continue;
    const double n = metrics.value("num_samples", 0.0);
    if (n <= 0) continue;
    for (const auto& [name, value] : metrics.items()) {
      if (!value.is_number() || name == "num_samples") continue;
      const std::string key = short_split(split) + "_" + short_metric(name);
      p.weighted_sum[key] += value.get<double>() * n;
      p.samples[key] += n;
    }
  }
  if (p.sites.size() < expected_sites) return std::nullopt;
  return close(model_round);
}

std::optional<nlohmann::json> EvaluationBoard::close(int64_t model_round) {
  const auto it = pending_.find(model_round);
  if (it == pending_.end()) return std::nullopt;
  nlohmann::json figures = nlohmann::json::object();
  for (const auto& [key, sum] : it->second.weighted_sum) figures[key] = sum / it->second.samples[key];
  pending_.erase(it);
  return figures;
}

bool EvaluationBoard::improves_best(const nlohmann::json& figures) {
  if (!figures.contains(key_metric_)) return false;
  const double v = figures[key_metric_].get<double>();
  const bool better = !best_ || (higher_is_better_ ? v > *best_ : v < *best_);
  if (better) best_ = v;
  return better;
}

}  // namespace flare::server
