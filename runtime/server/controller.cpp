#include "server/controller.hpp"

#include <algorithm>
#include <cstring>

#include <flare/plugin.hpp>

#include "plugin_host/plugin_instances.hpp"

namespace flare::server {

using Clock = std::chrono::steady_clock;

namespace {

// How long a collective failure waits for a peer's report of the cause:
// supervisors see a dead rank within 50 ms, so this is generous.
constexpr auto kConsequenceGrace = std::chrono::milliseconds(1000);

}  // namespace

Controller::Controller(ControllerSettings settings, ControllerOutputs outputs)
    : settings_(std::move(settings)),
      out_(std::move(outputs)),
      aggregator_(out_.aggregator, out_.kept_updates),
      board_(settings_.key_metric, settings_.key_metric_mode),
      generations_(settings_.sites),
      phase_started_(Clock::now()) {}

template <class Apply>
void Controller::apply_locked(const std::string& request, Apply&& apply) {
  try {
    apply();
  } catch (const RejectedRequest&) {
    throw;  // a plugin's refusal, which comes before anything changed
  } catch (const std::exception& e) {
    // The request was fine, the server failed (e.g. a full disk): the job
    // fails as the server's, and the site is told the job ended (ABORTED),
    // not that it failed.
    fail_locked("the server failed: applying " + request + ": " + e.what());
    throw JobEnded("the job has ended: " + failure_);
  }
}

void Controller::restart_group_locked(const std::string& site) {
  generations_.supersede(site);
  // An answered task stays answered (an update counts once per round); an
  // unanswered one goes to the new generation, with the current global model.
  if (!responded_.contains(site)) assigned_.erase(site);
  changed_.notify_all();
}

Registration Controller::register_site(const SiteJoin& join) {
  std::lock_guard lock(mutex_);
  const int64_t generation = generations_.hand_out(join.site);
  const bool rejoined = !registered_.insert(join.site).second;
  apply_locked("the registration of " + join.site,
               [&] { out_.events.site_joined(join, generation, rejoined); });
  if (phase_ == Phase::Registering && registered_.size() == settings_.sites.size()) {
    phase_ = Phase::InitialModel;
    phase_started_ = Clock::now();
    changed_.notify_all();
  }
  return {.num_rounds = settings_.num_rounds, .generation = generation};
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

Task Controller::make_task_locked(const std::string& site) {
  Task task;
  task.num_rounds = settings_.num_rounds;
  switch (phase_) {
    case Phase::Registering: task.kind = TaskKind::Wait; break;
    case Phase::InitialModel:
      task.kind = TaskKind::SendInitialModel;
      assigned_.insert(site);
      break;
    case Phase::Training:
    case Phase::FinalEvaluation: {
      const bool training = phase_ == Phase::Training;
      task.kind = training ? TaskKind::Train : TaskKind::Evaluate;
      task.round = training ? round_ : settings_.num_rounds;
      task.model = global_;
      assigned_.insert(site);
      break;
    }
    case Phase::Finished: task.kind = TaskKind::Finish; break;
    case Phase::Failed:
      task.kind = TaskKind::Finish;
      task.reason = failure_;
      break;
  }
  return task;
}

Task Controller::next_task(const std::string& site, int64_t generation,
                           std::chrono::milliseconds max_wait) {
  std::unique_lock lock(mutex_);
  generations_.require_current(site, generation, "task request");
  // The generation is checked again after the wait: a request parked here
  // while the group was restarted must not take the new generation's task.
  if (!changed_.wait_for(lock, max_wait, [&] { return has_task_locked(site); }) ||
      !generations_.is_current(site, generation)) {
    return Task{.kind = TaskKind::Wait};
  }
  return make_task_locked(site);
}

void Controller::accept_initial_model(InitialModel model) {
  std::lock_guard lock(mutex_);
  require_running_locked();
  generations_.require_current(model.site, model.generation, "initial model");
  if (phase_ != Phase::InitialModel || !assigned_.contains(model.site))
    throw RejectedRequest("no initial model was asked of " + model.site);
  if (model.weights.empty()) throw InvalidRequest(model.site + " sent an empty initial model");
  apply_locked("the initial model from " + model.site, [&] {
    global_ = std::make_shared<const GlobalModel>(0, std::move(model.weights));
    out_.models.save_global(0, global_->views());
    awaiting_evaluation_[0] = global_;
    out_.events.initial_model_received(model.site, *global_);
    start_round_locked(0);
  });
}

void Controller::start_round_locked(int64_t round) {
  phase_ = Phase::Training;
  round_ = round;
  assigned_.clear();
  responded_.clear();
  round_images_ = 0;
  round_train_seconds_ = 0;
  phase_started_ = Clock::now();
  try {
    std::lock_guard gate(aggregator_.mutex);
    ++aggregator_.rounds_begun;  // uploads still open for the last round are refused
    aggregator_.kept.clear();    // a failed round's, if any
    aggregator_.plugin.begin_round(round, global_->views());
  } catch (const host::PluginCallError& e) {
    aggregator_failed_locked(e);
    return;
  }
  out_.events.round_started(round, settings_.sites.size());
  changed_.notify_all();
}

std::string Controller::update_misfit_locked(const std::string& site, int64_t round) const {
  if (phase_ != Phase::Training || round != round_ || !assigned_.contains(site) ||
      responded_.contains(site)) {
    return "unexpected update from " + site + " for round " + std::to_string(round + 1);
  }
  return {};
}

std::unique_ptr<UpdateIntake> Controller::open_update(SiteUpdate header) {
  std::lock_guard lock(mutex_);
  require_running_locked();
  generations_.require_current(header.site, header.generation, "update");
  if (const auto misfit = update_misfit_locked(header.site, header.round); !misfit.empty())
    throw RejectedRequest(misfit);
  if (header.num_weights != global_->views().size()) {
    throw InvalidRequest("update from " + header.site + " for round " +
                         std::to_string(header.round + 1) + " announces " +
                         std::to_string(header.num_weights) + " tensors, the global model has " +
                         std::to_string(global_->views().size()));
  }
  return std::make_unique<UpdateIntake>(
      aggregator_, global_, std::move(header), settings_.spool_dir,
      [this](const host::PluginCallError& e) { aggregator_failed(e); });
}

void Controller::commit_update(UpdateIntake& intake) {
  std::lock_guard lock(mutex_);
  require_running_locked();
  const SiteUpdate& update = intake.update();
  const std::string& site = update.site;
  generations_.require_current(site, update.generation, "update");
  if (const auto misfit = update_misfit_locked(site, update.round); !misfit.empty())
    throw RejectedRequest(misfit);
  const std::string round = "round " + std::to_string(update.round + 1);
  apply_locked("the update from " + site + " for " + round, [&] {
    intake.commit();
    responded_.insert(site);
    round_images_ += update.num_samples;
    round_train_seconds_ = std::max(round_train_seconds_, update.train_seconds);
    out_.events.site_trained(update);
    record_evaluation_locked(update.round, site, update.evaluation);
    if (responded_.size() == settings_.sites.size()) complete_round_locked();
  });
}

void Controller::accept_update(const SiteUpdate& update) {
  SiteUpdate header = update;
  header.weights.clear();
  header.aux.clear();
  header.num_weights = update.weights.size();
  header.num_aux = update.aux.size();
  const auto intake = open_update(std::move(header));
  size_t index = 0;
  for (const auto* tensors : {&update.weights, &update.aux}) {
    for (const auto& t : *tensors) {
      transport::TensorDesc desc{.name = t.name, .dtype = t.dtype, .shape = t.shape,
                                 .aux = tensors == &update.aux};
      desc.element_bytes = element_bytes(t.dtype);
      desc.num_elements = desc.element_bytes ? t.data.size() / desc.element_bytes : 0;
      intake->begin_tensor(index, desc);
      if (desc.num_elements > 0) intake->piece(index, 0, desc.num_elements, t.data.data());
      ++index;
    }
  }
  commit_update(*intake);
}

void Controller::complete_round_locked() {
  std::vector<tensor::OwnedTensor> next;  // the plugin's views last only until begin_round
  try {
    std::lock_guard gate(aggregator_.mutex);
    // Uploads still open (a restarted site's old stream, a duplicate) hold
    // half-folded updates, which must not count.
    if (auto failed = aggregator_.take_back_open_locked()) throw *failed;
    const auto result = aggregator_.plugin.finalize();  // checked by the plugin host
    // The round's model is done with (sites measured it: its figures are in)
    // unless a restarted site still downloads it: its buffers take the next
    // one (the layout is the same, checked), so the server holds the
    // aggregate and one global model, not two.
    next = GlobalModel::recycle(std::move(global_));
    if (next.size() != result.size()) next.clear();
    for (size_t i = 0; i < result.size(); ++i) {
      const auto& t = result[i];
      const size_t bytes = num_bytes(t.tensor);
      const auto* data = static_cast<const std::byte*>(t.tensor.data) + t.tensor.byte_offset;
      if (i < next.size() && next[i].name == t.name && next[i].data.size() == bytes) {
        if (bytes > 0) std::memcpy(next[i].data.data(), data, bytes);
      } else {
        if (i < next.size()) next.resize(i);
        next.push_back(tensor::copy_of(t));
      }
    }
    aggregator_.kept.clear();  // the round's updates, on disk until now
  } catch (const host::PluginCallError& e) {
    aggregator_.kept.clear();
    aggregator_failed_locked(e);
    return;
  }
  const int64_t model_round = round_ + 1;
  global_ = std::make_shared<const GlobalModel>(model_round, std::move(next));
  const auto path = out_.models.save_global(model_round, global_->views());
  // Its state goes with the model it made, so a run resumed from this model
  // goes on exactly (FedOpt's moments, an accountant's rounds).
  if (!path.empty() && !save_aggregator_state_locked(model_round)) return;
  awaiting_evaluation_[model_round] = global_;

  RoundFigures& f = figures_[model_round];
  f.model_round = model_round;
  f.round_seconds =
      std::chrono::duration<double>(Clock::now() - phase_started_).count();
  f.images_per_s = round_train_seconds_ > 0 ? round_images_ / round_train_seconds_ : -1;
  f.aggregator = out_.aggregator_figures.take(round_);
  out_.events.round_aggregated(*global_, path, f.aggregator);

  if (model_round < settings_.num_rounds) {
    start_round_locked(model_round);
    return;
  }
  phase_ = Phase::FinalEvaluation;
  assigned_.clear();
  responded_.clear();
  phase_started_ = Clock::now();
  out_.events.final_evaluation_started();
  changed_.notify_all();
}

void Controller::accept_evaluation(const SiteEvaluation& evaluation) {
  std::lock_guard lock(mutex_);
  require_running_locked();
  const std::string& site = evaluation.site;
  generations_.require_current(site, evaluation.generation, "evaluation");
  if (phase_ != Phase::FinalEvaluation || evaluation.round != settings_.num_rounds ||
      !assigned_.contains(site) || responded_.contains(site)) {
    throw RejectedRequest("unexpected evaluation from " + site);
  }
  responded_.insert(site);
  apply_locked("the evaluation from " + site, [&] {
    record_evaluation_locked(evaluation.round, site, evaluation.evaluation);
    if (responded_.size() == settings_.sites.size()) {
      phase_ = Phase::Finished;
      out_.events.job_finished();
      changed_.notify_all();
    }
  });
}

void Controller::record_evaluation_locked(int64_t model_round, const std::string& site,
                                          const nlohmann::json& evaluation) {
  const auto figures = board_.record(model_round, site, evaluation, settings_.sites.size());
  if (!figures) return;
  RoundFigures& f = figures_[model_round];
  f.model_round = model_round;
  f.metrics = *figures;
  // Said once, at the first figures (the initial model's, in round 1): a
  // misspelt key metric otherwise only shows as a best model never written.
  if (!key_metric_checked_) {
    key_metric_checked_ = true;
    if (!figures->contains(board_.key_metric())) {
      std::vector<std::string> reported;
      for (const auto& [name, value] : figures->items()) reported.push_back(name);
      out_.events.key_metric_missing(board_.key_metric(), reported);
    }
  }
  // The initial model is measured but not a candidate for "best".
  f.best = model_round > 0 && board_.improves_best(*figures);
  if (f.best) out_.models.save_best(model_round, awaiting_evaluation_.at(model_round)->views(),
                                    *figures);
  awaiting_evaluation_.erase(model_round);
  out_.events.model_measured(f, out_.models.kept_global(model_round));
}

void Controller::progress(const SiteProgress& p) {
  generations_.require_current(p.site, p.generation, "progress report");
  out_.events.site_progress(p);
}

void Controller::site_metrics(const SiteMetrics& m) {
  std::lock_guard lock(mutex_);
  require_running_locked();
  generations_.require_current(m.site, m.generation, "metrics report");
  out_.events.site_metrics(m);
}

void Controller::failure(const RankFailure& f) {
  std::lock_guard lock(mutex_);
  // A supervisor counts its group's restarts as the server does; it may
  // report a generation that failed before it registered, never a later one.
  const int64_t current = generations_.current(f.site);
  if (f.generation > current) {
    throw RejectedRequest("failure report from " + f.site + " refused: it names worker group " +
                          "generation " + std::to_string(f.generation) +
                          ", which the server has not opened (the site's is " +
                          std::to_string(current) + ")");
  }
  if (f.restarting && (phase_ == Phase::Finished || phase_ == Phase::Failed))
    throw RejectedRequest("the job is over; " + f.site + " must not restart");
  // A report of an earlier generation: another node of the site reported
  // that failure first, and its restart is under way, counted once.
  const FailureHandling handling = f.generation < current ? FailureHandling::AlreadyRestarting
                                   : f.restarting         ? FailureHandling::Restarting
                                                          : FailureHandling::EndsJob;
  if (handling == FailureHandling::Restarting) restart_group_locked(f.site);
  apply_locked("a failure report from " + f.site,
               [&] { out_.events.rank_failed(f, handling); });
  if (handling != FailureHandling::EndsJob) return;
  std::string reason = f.summary();
  if (!f.log_tail.empty()) reason += "\nlast lines of its log:\n" + f.log_tail;
  if (f.in_collective) {
    if (!consequence_) consequence_ = reason, consequence_at_ = Clock::now();
    return;
  }
  fail_locked(reason);
}

void Controller::site_refused(const SiteRefusal& r) {
  std::lock_guard lock(mutex_);
  require_running_locked();
  apply_locked("a refusal from " + r.site, [&] { out_.events.site_refused(r); });
  fail_locked(r.site + " refused the job: " + r.reason);
}

void Controller::heartbeat(const std::string& site, int64_t generation) {
  generations_.require_current(site, generation, "heartbeat");
}

void Controller::site_lost(const std::string& site, const std::string& reason) {
  std::lock_guard lock(mutex_);
  (void)site;
  fail_locked(consequence_ ? *consequence_ : reason);
}

void Controller::abort(const std::string& reason) {
  std::lock_guard lock(mutex_);
  // A site's own report says more than "its process ended".
  fail_locked(consequence_ ? *consequence_ : reason);
}

void Controller::server_failed(const std::string& reason) {
  std::lock_guard lock(mutex_);
  fail_locked(reason);
}

bool Controller::save_aggregator_state_locked(int64_t model_round) {
  try {
    std::lock_guard gate(aggregator_.mutex);
    if (!aggregator_.plugin.has_state()) return true;
    const auto state = aggregator_.plugin.get_state();
    out_.models.save_aggregator_state(model_round, state.tensors, state.meta_json);
  } catch (const host::PluginCallError& e) {
    aggregator_failed_locked(e);
    return false;
  }
  return true;
}

void Controller::aggregator_failed(const host::PluginCallError& error) {
  std::lock_guard lock(mutex_);
  if (phase_ == Phase::Finished || phase_ == Phase::Failed) return;
  aggregator_failed_locked(error);
}

void Controller::require_running_locked() const {
  if (phase_ == Phase::Finished) throw JobEnded("the job has ended");
  if (phase_ == Phase::Failed) throw JobEnded("the job has ended: " + failure_);
}

void Controller::fail_locked(const std::string& reason) {
  if (phase_ == Phase::Finished || phase_ == Phase::Failed) return;
  phase_ = Phase::Failed;
  failure_ = reason;
  out_.events.job_failed(reason);
  changed_.notify_all();
}

void Controller::aggregator_failed_locked(const host::PluginCallError& e) {
  // The site whose request got here did nothing wrong: its request succeeds,
  // and every site learns the end from its next task.
  const AggregatorFailure failure{.plugin = e.plugin_name(),
                                  .file = e.plugin_file(),
                                  .call = e.function(),
                                  .error = e.plugin_message(),
                                  .message = e.what()};
  out_.events.aggregator_failed(failure);
  fail_locked(failure.summary());
}

void Controller::check_deadlines_locked() {
  const auto elapsed = Clock::now() - phase_started_;
  // The first few names: a job of thousands of sites would print them all.
  auto missing = [&](const std::set<std::string>& have) {
    constexpr int kNamed = 10;
    std::string names;
    int count = 0;
    for (const auto& s : settings_.sites) {
      if (have.contains(s)) continue;
      if (++count <= kNamed) names += (names.empty() ? "" : ", ") + s;
    }
    if (count > kNamed) names += " and " + std::to_string(count - kNamed) + " more";
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
