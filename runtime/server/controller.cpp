#include "server/controller.hpp"

#include <algorithm>
#include <cstdio>

#include "transport/tensor_codec.hpp"

namespace flare::server {

namespace v1 = transport::v1;
using Clock = std::chrono::steady_clock;

namespace {

// How long a collective failure waits for a peer's report of the cause:
// supervisors see a dead rank within 50 ms, so this is generous.
constexpr auto kConsequenceGrace = std::chrono::milliseconds(1000);

std::string format_fixed(double v, int decimals) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, v);
  return buf;
}

nlohmann::json parse_json_or_empty(const std::string& text) {
  if (text.empty()) return nlohmann::json::object();
  auto parsed = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) throw RejectedRequest("malformed JSON: " + text.substr(0, 200));
  return parsed;
}

}  // namespace

Controller::Controller(ControllerSettings settings, ControllerOutputs outputs)
    : settings_(std::move(settings)),
      out_(std::move(outputs)),
      board_(settings_.key_metric),
      phase_started_(Clock::now()) {}

void Controller::require_site_locked(const std::string& site) const {
  if (std::find(settings_.sites.begin(), settings_.sites.end(), site) == settings_.sites.end())
    throw RejectedRequest("unknown site '" + site + "'");
}

void Controller::require_generation_locked(const std::string& site, int64_t generation,
                                           const char* what) const {
  const auto it = generation_.find(site);
  const int64_t current = it == generation_.end() ? 0 : it->second;
  if (generation != current) {
    throw RejectedRequest(std::string(what) + " from " + site + "'s worker group generation " +
                          std::to_string(generation) + " refused: the site now runs generation " +
                          std::to_string(current));
  }
}

void Controller::adopt_generation_locked(const std::string& site, int64_t generation) {
  int64_t& current = generation_[site];
  if (generation <= current) return;
  current = generation;
  // An answered task stays answered (an update counts once per round); an
  // unanswered one goes to the new generation, with the current global model.
  if (!responded_.contains(site)) assigned_.erase(site);
  changed_.notify_all();
}

v1::RegisterReply Controller::register_site(const v1::RegisterRequest& request) {
  std::lock_guard lock(mutex_);
  require_site_locked(request.site());
  if (request.generation() < generation_[request.site()])  // a newer one may register
    require_generation_locked(request.site(), request.generation(), "registration");
  adopt_generation_locked(request.site(), request.generation());
  if (!registered_.insert(request.site()).second) {
    out_.log->info("{} registered again (worker group generation {})", request.site(),
                   request.generation());
    out_.display.message(request.site() + " rejoined with a restarted worker group");
  } else {
    out_.log->info("{} registered ({} worker ranks)", request.site(), request.world_size());
    out_.display.message(request.site() + " joined with " +
                         std::to_string(request.world_size()) + " worker ranks");
  }
  if (phase_ == Phase::Registering && registered_.size() == settings_.sites.size()) {
    phase_ = Phase::InitialModel;
    phase_started_ = Clock::now();
    changed_.notify_all();
  }
  v1::RegisterReply reply;
  reply.set_num_rounds(settings_.num_rounds);
  return reply;
}

bool Controller::has_task_locked(const std::string& site) const {
  switch (phase_) {
    case Phase::Registering: return false;
    case Phase::InitialModel: return site == settings_.sites.front() && assigned_.empty();
    case Phase::Training:
    case Phase::FinalEvaluation: return !assigned_.contains(site);
    case Phase::Finished:
    case Phase::Failed: return true;
  }
  return false;
}

v1::Task Controller::make_task_locked(const std::string& site) {
  v1::Task task;
  task.set_num_rounds(settings_.num_rounds);
  switch (phase_) {
    case Phase::Registering: task.set_kind(v1::Task::WAIT); break;
    case Phase::InitialModel:
      task.set_kind(v1::Task::SEND_INITIAL_MODEL);
      assigned_.insert(site);
      break;
    case Phase::Training:
    case Phase::FinalEvaluation: {
      const bool training = phase_ == Phase::Training;
      task.set_kind(training ? v1::Task::TRAIN : v1::Task::EVALUATE);
      task.set_round(training ? round_ : settings_.num_rounds);
      auto views = tensor::views_of(global_);
      transport::encode_tensors(views, task.mutable_model()->mutable_weights());
      assigned_.insert(site);
      break;
    }
    case Phase::Finished: task.set_kind(v1::Task::FINISH); break;
    case Phase::Failed:
      task.set_kind(v1::Task::FINISH);
      task.set_reason(failure_);
      break;
  }
  return task;
}

v1::Task Controller::next_task(const v1::TaskRequest& request,
                               std::chrono::milliseconds max_wait) {
  const std::string& site = request.site();
  std::unique_lock lock(mutex_);
  require_site_locked(site);
  require_generation_locked(site, request.generation(), "task request");
  // The generation is checked again after the wait: a request parked here
  // while the group was restarted must not take the new generation's task.
  if (!changed_.wait_for(lock, max_wait, [&] { return has_task_locked(site); }) ||
      generation_[site] != request.generation()) {
    v1::Task wait;
    wait.set_kind(v1::Task::WAIT);
    return wait;
  }
  return make_task_locked(site);
}

void Controller::accept_initial_model(const v1::InitialModel& model) {
  std::lock_guard lock(mutex_);
  require_generation_locked(model.site(), model.generation(), "initial model");
  if (phase_ != Phase::InitialModel || !assigned_.contains(model.site()))
    throw RejectedRequest("no initial model was asked of " + model.site());
  global_ = transport::decode_tensors(model.model().weights());
  if (global_.empty()) throw RejectedRequest(model.site() + " sent an empty initial model");
  const auto views = tensor::views_of(global_);
  out_.models.save_global(0, views);
  awaiting_evaluation_[0] = global_;
  out_.log->info("initial model from {}: {} tensors", model.site(), global_.size());
  start_round_locked(0);
}

void Controller::start_round_locked(int64_t round) {
  phase_ = Phase::Training;
  round_ = round;
  assigned_.clear();
  responded_.clear();
  round_images_ = 0;
  round_train_seconds_ = 0;
  phase_started_ = Clock::now();
  const auto views = tensor::views_of(global_);
  out_.aggregator.begin_round(round, views);
  out_.display.message("round " + std::to_string(round + 1) + "/" +
                       std::to_string(settings_.num_rounds) + ": training on " +
                       std::to_string(settings_.sites.size()) + " sites");
  changed_.notify_all();
}

void Controller::accept_update(const v1::Update& update) {
  std::lock_guard lock(mutex_);
  const std::string& site = update.site();
  require_generation_locked(site, update.generation(), "update");
  if (phase_ != Phase::Training || update.round() != round_ || !assigned_.contains(site) ||
      responded_.contains(site)) {
    throw RejectedRequest("unexpected update from " + site + " for round " +
                          std::to_string(update.round() + 1));
  }
  // Everything that can be malformed is read before the update is folded in.
  const auto train_metrics = parse_json_or_empty(update.train_metrics_json());
  const auto eval = parse_json_or_empty(update.eval_json());
  const auto meta = parse_json_or_empty(update.model().meta_json());
  auto weights = transport::decode_tensors(update.model().weights());
  auto aux = transport::decode_tensors(update.model().aux());
  const auto weight_views = tensor::views_of(weights);
  const auto aux_views = tensor::views_of(aux);
  flare_site_update su{};
  su.struct_size = sizeof(su);
  su.site = site.c_str();
  su.round = update.round();
  su.weights = weight_views.data();
  su.num_weights = weight_views.size();
  su.aux = aux_views.empty() ? nullptr : aux_views.data();
  su.num_aux = aux_views.size();
  su.num_samples = update.num_samples();
  su.num_steps = update.num_steps();
  su.metrics_json = update.train_metrics_json().c_str();
  su.meta_json = update.model().meta_json().c_str();
  out_.aggregator.accept(su);  // in time: folded in now, not kept
  responded_.insert(site);

  const double images_per_s =
      update.train_seconds() > 0 ? update.num_samples() / update.train_seconds() : 0.0;
  round_images_ += update.num_samples();
  round_train_seconds_ = std::max(round_train_seconds_, update.train_seconds());

  nlohmann::json line = {{"kind", "site"},
                         {"round", update.round() + 1},
                         {"site", site},
                         {"num_samples", update.num_samples()},
                         {"num_steps", update.num_steps()},
                         {"train_seconds", update.train_seconds()},
                         {"images_per_s", images_per_s},
                         {"received_model", flatten_evaluation(eval)}};
  for (const auto& [k, v] : train_metrics.items()) line[k] = v;
  out_.metrics.append(line);
  out_.display.message(
      "round " + std::to_string(update.round() + 1) + "/" +
      std::to_string(settings_.num_rounds) + "  " + site + " done: " +
      format_fixed(update.num_samples(), 0) + " samples, " + format_fixed(images_per_s, 0) +
      " images/s" +
      (train_metrics.contains("train_loss")
           ? ", train_loss " + format_fixed(train_metrics["train_loss"].get<double>(), 4)
           : std::string()));

  if (meta.contains("data") && data_announced_.insert(site).second) {
    out_.display.message(site + " trains on " + meta["data"].get<std::string>());
    out_.log->info("{} trains on {}", site, meta["data"].get<std::string>());
  }
  record_evaluation_locked(update.round(), site, eval);
  if (responded_.size() == settings_.sites.size()) complete_round_locked();
}

void Controller::complete_round_locked() {
  const auto result = out_.aggregator.finalize();
  std::vector<tensor::OwnedTensor> next;
  next.reserve(result.size());
  for (const auto& t : result) next.push_back(tensor::copy_of(t));
  global_ = std::move(next);
  const int64_t model_round = round_ + 1;
  const auto views = tensor::views_of(global_);
  const auto path = out_.models.save_global(model_round, views);
  awaiting_evaluation_[model_round] = global_;

  RoundFigures& f = figures_[model_round];
  f.model_round = model_round;
  f.round_seconds =
      std::chrono::duration<double>(Clock::now() - phase_started_).count();
  f.images_per_s = round_train_seconds_ > 0 ? round_images_ / round_train_seconds_ : -1;
  out_.log->info("round {} aggregated; global model saved to {}", model_round, path.string());

  if (model_round < settings_.num_rounds) {
    start_round_locked(model_round);
    return;
  }
  phase_ = Phase::FinalEvaluation;
  assigned_.clear();
  responded_.clear();
  phase_started_ = Clock::now();
  out_.display.message("evaluating the final global model");
  changed_.notify_all();
}

void Controller::accept_evaluation(const v1::Evaluation& evaluation) {
  std::lock_guard lock(mutex_);
  const std::string& site = evaluation.site();
  require_generation_locked(site, evaluation.generation(), "evaluation");
  if (phase_ != Phase::FinalEvaluation || evaluation.round() != settings_.num_rounds ||
      !assigned_.contains(site) || responded_.contains(site)) {
    throw RejectedRequest("unexpected evaluation from " + site);
  }
  responded_.insert(site);
  record_evaluation_locked(evaluation.round(), site, parse_json_or_empty(evaluation.eval_json()));
  if (responded_.size() == settings_.sites.size()) {
    phase_ = Phase::Finished;
    changed_.notify_all();
  }
}

void Controller::record_evaluation_locked(int64_t model_round, const std::string& site,
                                          const nlohmann::json& eval) {
  const auto figures = board_.record(model_round, site, eval, settings_.sites.size());
  if (!figures) return;
  RoundFigures& f = figures_[model_round];
  f.model_round = model_round;
  f.val_acc = figures->value("val_acc", -1.0);
  f.test_acc = figures->value("test_acc", -1.0);
  f.val_loss = figures->value("val_loss", -1.0);
  // The initial model is measured but not a candidate for "best".
  f.best = model_round > 0 && board_.improves_best(*figures);
  if (f.best) {
    const auto views = tensor::views_of(awaiting_evaluation_[model_round]);
    out_.models.save_best(model_round, views, *figures);
  }
  awaiting_evaluation_.erase(model_round);

  nlohmann::json line = {{"kind", "global"},
                         {"round", model_round},
                         {"best", f.best},
                         {"model", out_.models.global_path(model_round).filename().string()}};
  for (const auto& [k, v] : figures->items()) line[k] = v;
  if (f.round_seconds >= 0) line["round_seconds"] = f.round_seconds;
  if (f.images_per_s >= 0) line["images_per_s"] = f.images_per_s;
  out_.metrics.append(line);
  std::string text = model_round == 0 ? "initial global model"
                                      : "global model after round " + std::to_string(model_round);
  for (const auto& [k, v] : figures->items()) text += "  " + k + " " + format_fixed(v.get<double>(), 4);
  out_.display.message(text + (f.best ? "  (best so far)" : ""));
}

void Controller::progress(const v1::Progress& p) {
  out_.display.site_progress(p.site(), p.round(), p.phase(), p.epoch(), p.step(), p.total());
}

void Controller::failure(const v1::Failure& f) {
  std::lock_guard lock(mutex_);
  require_site_locked(f.site());
  const std::string what =
      f.site() + " worker rank " + std::to_string(f.rank()) + " failed: " + f.cause();
  if (f.restarting() && (phase_ == Phase::Finished || phase_ == Phase::Failed))
    throw RejectedRequest("the job is over; " + f.site() + " must not restart");
  if (f.generation() < generation_[f.site()]) {
    // Another node of the site reported this generation's failure first: its
    // restart is under way and counted once. Shown only when it names a cause.
    out_.log->warn("{} (node {}, generation {}; its worker group is already restarting)\n"
                   "last lines of its log:\n{}",
                   what, f.node_rank(), f.generation(), f.log_tail());
    if (!f.in_collective())
      out_.display.message(what + " (its worker group is already restarting)");
    return;
  }
  if (f.restarting()) {
    out_.log->warn("{}; restarting its worker group ({} restarts left)\nlast lines of its log:\n{}",
                   what, f.restarts_left(), f.log_tail());
    out_.display.message(what + "; restarting its worker group (" +
                         std::to_string(f.restarts_left()) + " restarts left)");
    adopt_generation_locked(f.site(), f.generation() + 1);
    return;
  }
  std::string reason = what;
  if (!f.log_tail().empty()) reason += "\nlast lines of its log:\n" + f.log_tail();
  if (f.in_collective()) {
    if (!consequence_) consequence_ = reason, consequence_at_ = Clock::now();
    return;
  }
  fail_locked(reason);
}

void Controller::abort(const std::string& reason) {
  std::lock_guard lock(mutex_);
  // A site's own report says more than "its process ended".
  fail_locked(consequence_ ? *consequence_ : reason);
}

void Controller::fail_locked(const std::string& reason) {
  if (phase_ == Phase::Finished || phase_ == Phase::Failed) return;
  phase_ = Phase::Failed;
  failure_ = reason;
  out_.log->error("job failed: {}", reason);
  changed_.notify_all();
}

void Controller::check_deadlines_locked() {
  const auto elapsed = Clock::now() - phase_started_;
  auto missing = [&](const std::set<std::string>& have) {
    std::string names;
    for (const auto& s : settings_.sites)
      if (!have.contains(s)) names += (names.empty() ? "" : ", ") + s;
    return names;
  };
  const auto seconds = [](std::chrono::milliseconds d) { return std::to_string(d.count() / 1000.0); };
  if (consequence_ && Clock::now() - consequence_at_ > kConsequenceGrace) {
    fail_locked(*consequence_);
    return;
  }
  if (phase_ == Phase::Registering && elapsed > settings_.start_timeout) {
    fail_locked("sites did not register within " + seconds(settings_.start_timeout) +
                " s (server.worker_start_timeout_s): missing " + missing(registered_));
  } else if ((phase_ == Phase::Training || phase_ == Phase::FinalEvaluation ||
              phase_ == Phase::InitialModel) &&
             elapsed > settings_.round_timeout) {
    fail_locked("round " + std::to_string(round_ + 1) + " timed out after " +
                seconds(settings_.round_timeout) +
                " s (server.round_timeout_s): no answer from " + missing(responded_));
  }
}

JobOutcome Controller::run(const std::function<void()>& watch) {
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      changed_.wait_for(lock, std::chrono::milliseconds(200));
      check_deadlines_locked();
      if (phase_ == Phase::Finished) return {true, {}};
      if (phase_ == Phase::Failed) return {false, failure_};
    }
    watch();
  }
}

std::vector<RoundFigures> Controller::figures() const {
  std::lock_guard lock(mutex_);
  std::vector<RoundFigures> out;
  for (const auto& [round, f] : figures_) out.push_back(f);
  return out;
}

}  // namespace flare::server
