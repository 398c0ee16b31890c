#include "server/rpc_conversion.hpp"

#include "transport/tensor_codec.hpp"

namespace flare::server {

namespace {

nlohmann::json parse_json(const std::string& text, const char* field, const std::string& site) {
  if (text.empty()) return nlohmann::json::object();
  auto parsed = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    throw RejectedRequest("malformed JSON in " + std::string(field) + " from " + site + ": " +
                          text.substr(0, 200));
  }
  return parsed;
}

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
  return {.site = r.site(), .world_size = r.world_size(), .generation = r.generation()};
}

InitialModel from_wire(const v1::InitialModel& m) {
  return {.site = m.site(),
          .generation = m.generation(),
          .weights = transport::decode_tensors(m.model().weights())};
}

SiteUpdate from_wire(const v1::Update& u) {
  return {.site = u.site(),
          .round = u.round(),
          .generation = u.generation(),
          .weights = transport::decode_tensors(u.model().weights()),
          .aux = transport::decode_tensors(u.model().aux()),
          .num_samples = u.num_samples(),
          .num_steps = u.num_steps(),
          .train_seconds = u.train_seconds(),
          .train_metrics = parse_json(u.train_metrics_json(), "train_metrics_json", u.site()),
          .evaluation = parse_json(u.eval_json(), "eval_json", u.site()),
          .meta = parse_json(u.model().meta_json(), "meta_json", u.site())};
}

SiteEvaluation from_wire(const v1::Evaluation& e) {
  return {.site = e.site(),
          .round = e.round(),
          .generation = e.generation(),
          .evaluation = parse_json(e.eval_json(), "eval_json", e.site())};
}

SiteProgress from_wire(const v1::Progress& p) {
  return {.site = p.site(),
          .round = p.round(),
          .phase = p.phase(),
          .epoch = p.epoch(),
          .step = p.step(),
          .total = p.total()};
}

RankFailure from_wire(const v1::Failure& f) {
  return {.site = f.site(),
          .rank = f.rank(),
          .cause = f.cause(),
          .log_tail = f.log_tail(),
          .generation = f.generation(),
          .restarting = f.restarting(),
          .restarts_left = f.restarts_left(),
          .node_rank = f.node_rank(),
          .in_collective = f.in_collective(),
          .exit_code = f.has_exit_code() ? std::optional<int>(f.exit_code()) : std::nullopt,
          .signal = f.has_signal() ? std::optional<int>(f.signal()) : std::nullopt,
          .hang_s = f.has_hang_s() ? std::optional<double>(f.hang_s()) : std::nullopt};
}

std::shared_ptr<const v1::Task> TaskEncoder::encode(const Task& task) {
  auto encoded = std::make_shared<v1::Task>();
  encoded->set_kind(wire_kind(task.kind));
  encoded->set_round(task.round);
  encoded->set_num_rounds(task.num_rounds);
  encoded->set_reason(task.reason);
  if (!task.model) return encoded;

  std::lock_guard lock(mutex_);
  if (encoded_ && model_ == task.model && kind_ == task.kind && round_ == task.round)
    return encoded_;
  transport::encode_tensors(task.model->views(), encoded->mutable_model()->mutable_weights());
  model_ = task.model;
  kind_ = task.kind;
  round_ = task.round;
  encoded_ = std::move(encoded);
  ++model_encodings_;
  return encoded_;
}

int64_t TaskEncoder::model_encodings() const {
  std::lock_guard lock(mutex_);
  return model_encodings_;
}

}  // namespace flare::server
