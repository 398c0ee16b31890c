#include "server/rpc_conversion.hpp"

#include <cmath>
#include <set>

#include "common/printable_text.hpp"
#include "storage/safetensors.hpp"

namespace flare::server {

namespace {

using common::printable;

// What a site sends free-form (meta) may nest; deeper than this is refused,
// since dumping it again (for the aggregator) recurses once per level.
constexpr int kMaxJsonDepth = 32;

// Names the field and the site in every refusal.
class RequestCheck {
 public:
  explicit RequestCheck(const std::string& site) : site_(printable(site)) {}
  const std::string& site() const { return site_; }

  [[noreturn]] void invalid(const std::string& field, const std::string& problem) const {
    throw InvalidRequest(field + " from " + site_ + ": " + problem);
  }
  void at_least(const char* field, double value, double least) const {
    if (!(value >= least) || !std::isfinite(value))  // NaN fails both
      invalid(field, std::to_string(value) + " is not a finite number >= " + number(least));
  }
  void at_least(const char* field, int64_t value, int64_t least) const {
    if (value < least) invalid(field, std::to_string(value) + " is below " + std::to_string(least));
  }

  // The JSON text as an object (empty: {}), every string and name in it printable.
  nlohmann::json object(const std::string& text, const char* field) const {
    if (text.empty()) return nlohmann::json::object();
    auto parsed = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded()) {
      throw InvalidRequest("malformed JSON in " + std::string(field) + " from " + site_ + ": " +
                           printable(text.substr(0, 200)));
    }
    if (!parsed.is_object()) invalid(field, "is not a JSON object");
    return printable_json(parsed, field, 0);
  }

  // {name: finite number, ...}; `field` names where the object is.
  void numbers(const nlohmann::json& object, const std::string& field) const {
    for (const auto& [name, value] : object.items()) {
      if (!value.is_number() || !std::isfinite(value.get<double>())) {
        invalid(field, "'" + name + "' is " + excerpt(value) + ", not a finite number");
      }
    }
  }

  // {"validation": {"accuracy": 0.5, "num_samples": 10}, ...}: what the
  // evaluation board averages, so every value a finite number, samples >= 0.
  void evaluation(const nlohmann::json& eval, const char* field) const {
    for (const auto& [split, metrics] : eval.items()) {
      const std::string where = std::string(field) + " '" + split + "'";
      if (!metrics.is_object()) invalid(where, "is " + excerpt(metrics) + ", not an object");
      numbers(metrics, where);
      if (metrics.contains("num_samples"))
        at_least((where + " num_samples").c_str(), metrics["num_samples"].get<double>(), 0.0);
    }
  }

 private:
  static std::string number(double v) {
    std::string text = std::to_string(v);
    text.erase(text.find_last_not_of('0') + 1);
    if (text.back() == '.') text.pop_back();
    return text;
  }
  // A value quoted in a message: short, and never a whole nested document.
  static std::string excerpt(const nlohmann::json& value) {
    if (value.is_object()) return "an object";
    if (value.is_array()) return "an array";
    return value.dump().substr(0, 40);
  }
  nlohmann::json printable_json(const nlohmann::json& value, const char* field, int depth) const {
    if (depth > kMaxJsonDepth)
      invalid(field, "nests deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    if (value.is_string()) return printable(value.get<std::string>());
    if (value.is_array()) {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& item : value) out.push_back(printable_json(item, field, depth + 1));
      return out;
    }
    if (!value.is_object()) return value;
    nlohmann::json out = nlohmann::json::object();
    for (const auto& [name, item] : value.items())
      out[printable(name)] = printable_json(item, field, depth + 1);
    return out;
  }

  std::string site_;
};

v1::Task::Kind wire_kind(TaskKind kind) {
  switch (kind) {
    case TaskKind::Wait: return v1::Task::WAIT;
    case TaskKind::SendInitialModel: return v1::Task::SEND_INITIAL_MODEL;
    case TaskKind::Train: return v1::Task::TRAIN;
    case TaskKind::Evaluate: return v1::Task::EVALUATE;
    case TaskKind::Finish: return v1::Task::FINISH;
  }
  return v1::Task::WAIT;
}

}  // namespace

SiteJoin from_wire(const v1::RegisterRequest& r) {
  const RequestCheck request(r.site());
  request.at_least("world_size", int64_t{r.world_size()}, 1);
  return {.site = request.site(), .world_size = r.world_size()};
}

InitialModel from_wire(const v1::InitialModelHeader& m, std::vector<tensor::OwnedTensor> weights) {
  const RequestCheck request(m.site());
  request.at_least("generation", m.generation(), 0);
  // It becomes the global model: every file and every site holds it as sent.
  if (weights.empty()) request.invalid("initial model", "has no tensors");
  std::set<std::string> names;
  for (const auto& t : weights) {
    const std::string field = "initial model tensor '" + printable(t.name) + "'";
    if (t.name.empty()) request.invalid("initial model", "a tensor has no name");
    if (!names.insert(t.name).second) request.invalid(field, "appears twice");
    if (t.name == storage::kMetadataKey) request.invalid(field, "has the name model files keep for metadata");
    try {
      (void)storage::safetensors_dtype_name(t.dtype);
    } catch (const storage::StorageError& e) {
      request.invalid(field, std::string("cannot be a model file's: ") + e.what());
    }
  }
  return {.site = request.site(), .generation = m.generation(), .weights = std::move(weights)};
}

SiteUpdate from_wire(const v1::UpdateHeader& u) {
  const RequestCheck request(u.site());
  request.at_least("round", u.round(), 0);
  request.at_least("generation", u.generation(), 0);
  request.at_least("num_samples", u.num_samples(), 0.0);
  request.at_least("num_steps", u.num_steps(), 0);
  request.at_least("train_seconds", u.train_seconds(), 0.0);
  request.at_least("num_weights", int64_t{u.num_weights()}, 0);  // the round checks it
  request.at_least("num_aux", int64_t{u.num_aux()}, 0);
  SiteUpdate update{.site = request.site(),
                    .round = u.round(),
                    .generation = u.generation(),
                    .num_weights = static_cast<size_t>(u.num_weights()),
                    .num_aux = static_cast<size_t>(u.num_aux()),
                    .num_samples = u.num_samples(),
                    .num_steps = u.num_steps(),
                    .train_seconds = u.train_seconds(),
                    .train_metrics = request.object(u.train_metrics_json(), "train_metrics_json"),
                    .evaluation = request.object(u.eval_json(), "eval_json"),
                    .meta = request.object(u.meta_json(), "meta_json")};
  request.numbers(update.train_metrics, "train_metrics_json");
  request.evaluation(update.evaluation, "eval_json");
  return update;
}

SiteEvaluation from_wire(const v1::Evaluation& e) {
  const RequestCheck request(e.site());
  request.at_least("round", e.round(), 0);
  request.at_least("generation", e.generation(), 0);
  SiteEvaluation evaluation{.site = request.site(),
                            .round = e.round(),
                            .generation = e.generation(),
                            .evaluation = request.object(e.eval_json(), "eval_json")};
  request.evaluation(evaluation.evaluation, "eval_json");
  return evaluation;
}

SiteProgress from_wire(const v1::Progress& p) {
  const RequestCheck request(p.site());
  request.at_least("generation", p.generation(), 0);
  request.at_least("round", p.round(), 0);
  request.at_least("epoch", p.epoch(), 0);
  request.at_least("step", p.step(), 0);
  request.at_least("total", p.total(), 0);
  // step > total is shown as a full bar: a plugin's off-by-one is no reason to refuse.
  return {.site = request.site(),
          .generation = p.generation(),
          .round = p.round(),
          .phase = printable(p.phase()),
          .epoch = p.epoch(),
          .step = p.step(),
          .total = p.total()};
}

SiteMetrics from_wire(const v1::MetricBatch& batch) {
  const RequestCheck request(batch.site());
  request.at_least("generation", batch.generation(), 0);
  if (batch.points_size() > kMaxMetricPoints)
    request.invalid("points", std::to_string(batch.points_size()) +
                                  " points in one batch (at most " +
                                  std::to_string(kMaxMetricPoints) + ")");
  SiteMetrics metrics;
  metrics.site = request.site();
  metrics.generation = batch.generation();
  metrics.points.reserve(batch.points_size());
  for (const v1::MetricPoint& p : batch.points()) {
    if (p.name().empty() || p.name().size() > kMaxMetricName)
      request.invalid("metric name", "'" + printable(p.name().substr(0, 40)) + "' is not 1 to " +
                                         std::to_string(kMaxMetricName) + " bytes long");
    request.at_least("step", p.step(), 0);
    request.at_least("round", p.round(), 0);
    request.at_least("epoch", p.epoch(), 0);
    const std::string name = printable(p.name());
    if (!std::isfinite(p.value())) {
      metrics.dropped.push_back(name + " = " + std::to_string(p.value()) + " at step " +
                                std::to_string(p.step()));
      continue;
    }
    metrics.points.push_back({.name = name,
                              .value = p.value(),
                              .step = p.step(),
                              .round = p.round(),
                              .epoch = p.epoch()});
  }
  return metrics;
}

RankFailure from_wire(const v1::Failure& f) {
  const RequestCheck request(f.site());
  request.at_least("rank", int64_t{f.rank()}, 0);
  request.at_least("node_rank", int64_t{f.node_rank()}, 0);
  request.at_least("generation", f.generation(), 0);
  request.at_least("restarts_left", int64_t{f.restarts_left()}, 0);
  if (f.has_signal()) request.at_least("signal", int64_t{f.signal()}, 1);
  if (f.has_hang_s()) request.at_least("hang_s", f.hang_s(), 0.0);
  return {.site = request.site(),
          .rank = f.rank(),
          .cause = printable(f.cause()),
          .log_tail = printable(f.log_tail(), common::LineBreaks::Keep),
          .generation = f.generation(),
          .restarting = f.restarting(),
          .restarts_left = f.restarts_left(),
          .node_rank = f.node_rank(),
          .in_collective = f.in_collective(),
          .exit_code = f.has_exit_code() ? std::optional<int>(f.exit_code()) : std::nullopt,
          .signal = f.has_signal() ? std::optional<int>(f.signal()) : std::nullopt,
          .hang_s = f.has_hang_s() ? std::optional<double>(f.hang_s()) : std::nullopt};
}

SiteRefusal from_wire(const v1::Refusal& r) {
  const RequestCheck request(r.site());
  request.at_least("node_rank", int64_t{r.node_rank()}, 0);
  return {.site = request.site(), .node_rank = r.node_rank(), .reason = printable(r.reason())};
}

v1::Task to_wire(const Task& task) {
  v1::Task wire;
  wire.set_kind(wire_kind(task.kind));
  wire.set_round(task.round);
  wire.set_num_rounds(task.num_rounds);
  wire.set_reason(task.reason);
  if (task.model) wire.set_num_tensors(static_cast<int32_t>(task.model->views().size()));
  return wire;
}

}  // namespace flare::server
