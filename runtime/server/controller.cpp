#include "server/controller.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <limits>

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
      sampler_(settings_.seed),
      phase_started_(Clock::now()) {}

size_t Controller::min_clients() const {
  return settings_.min_clients > 0 ? static_cast<size_t>(settings_.min_clients)
                                   : settings_.sites.size();
}

std::vector<std::string> Controller::sites_in_job_locked() const {
  std::vector<std::string> sites;
  for (const auto& s : settings_.sites)
    if (in_job_.contains(s)) sites.push_back(s);
  return sites;
}

std::string Controller::sites_gone_locked() const {
  std::string text;
  for (const auto& s : settings_.sites) {
    const auto it = gone_.find(s);
    if (it != gone_.end()) text += (text.empty() ? "" : "; ") + s + ": " + it->second;
  }
  return text;
}

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
  liveness_.seen(site);  // its restart gets the whole grace period
  // An answered task stays answered (an update counts once per round); an
  // unanswered one goes to the new generation, with the current global model.
  if (!responded_.contains(site)) assigned_.erase(site);
  changed_.notify_all();
}

Registration Controller::register_site(const SiteJoin& join) {
  std::lock_guard lock(mutex_);
  const int64_t generation = generations_.hand_out(join.site);
  const bool rejoined = !ever_registered_.insert(join.site).second;
  in_job_.insert(join.site);
  gone_.erase(join.site);
  liveness_.seen(join.site);
  // What an earlier generation was handed and did not answer goes to this one.
  if (!responded_.contains(join.site)) assigned_.erase(join.site);
  // Back in the round it was dropped from, while it runs: its task again.
  if (left_round_.erase(join.site) > 0) sampled_.insert(join.site);
  apply_locked("the registration of " + join.site,
               [&] { out_.events.site_joined(join, generation, rejoined); });
  begin_when_all_registered_locked();
  changed_.notify_all();
  return {.num_rounds = settings_.num_rounds, .generation = generation};
}

void Controller::begin_when_all_registered_locked() {
  // Every site registered but those gone before they could: no reason to
  // wait out the start timeout for a site known dead.
  if (phase_ == Phase::Registering && in_job_.size() + gone_.size() == settings_.sites.size() &&
      in_job_.size() >= min_clients())
    begin_job_locked();
}

void Controller::begin_job_locked() {
  if (resumed_round_) {
    if (*resumed_round_ < settings_.num_rounds) {
      start_round_locked(*resumed_round_);
    } else {
      start_final_evaluation_locked();
    }
    return;
  }
  phase_ = Phase::InitialModel;
  // The first site in the job's order: a run's initial model does not
  // depend on which site registered first.
  initial_site_ = sites_in_job_locked().front();
  assigned_.clear();
  phase_started_ = Clock::now();
  changed_.notify_all();
}

bool Controller::has_task_locked(const std::string& site) const {
  switch (phase_) {
    case Phase::Registering: return false;
    case Phase::InitialModel: return site == initial_site_ && assigned_.empty();
    case Phase::Training:
    case Phase::FinalEvaluation: return sampled_.contains(site) && !assigned_.contains(site);
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
  liveness_.seen(site);
  // The generation is checked again after the wait: a request parked here
  // while the group was restarted must not take the new generation's task.
  if (!changed_.wait_for(lock, max_wait, [&] { return has_task_locked(site); }) ||
      !generations_.is_current(site, generation)) {
    return Task{.kind = TaskKind::Wait};
  }
  liveness_.seen(site);
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
  const auto candidates = sites_in_job_locked();
  if (candidates.size() < min_clients()) {
    fail_locked("round " + std::to_string(round + 1) + " cannot start: job.min_clients is " +
                std::to_string(min_clients()) + " and " + std::to_string(candidates.size()) +
                " sites are in the job; gone: " + sites_gone_locked());
    return;
  }
  const size_t wanted = settings_.clients_per_round > 0
                            ? static_cast<size_t>(settings_.clients_per_round)
                            : settings_.sites.size();
  const auto sampled = sampler_.sample(candidates, wanted);
  phase_ = Phase::Training;
  round_ = round;
  sampled_ = {sampled.begin(), sampled.end()};
  assigned_.clear();
  responded_.clear();
  left_round_.clear();
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
  out_.events.round_started(round, sampled);
  changed_.notify_all();
}

void Controller::check_result_fits_locked(const std::string& site, int64_t round,
                                          const char* what) {
  const int64_t phase_round = phase_ == Phase::Training ? round_ : settings_.num_rounds;
  const bool in_phase = phase_ == Phase::Training || phase_ == Phase::FinalEvaluation;
  if (in_phase && round == phase_round && sampled_.contains(site) && assigned_.contains(site) &&
      !responded_.contains(site))
    return;
  if (stragglers_.contains({site, round})) {
    out_.events.late_result_refused(site, round);
    throw LateResult("late " + std::string(what) + " from " + site + " for round " +
                     std::to_string(round + 1) + ": that round closed at its deadline (" +
                     "server.round_timeout_s) without it; it is not folded into any round");
  }
  throw RejectedRequest("unexpected " + std::string(what) + " from " + site + " for round " +
                        std::to_string(round + 1));
}

std::unique_ptr<UpdateIntake> Controller::open_update(SiteUpdate header) {
  std::lock_guard lock(mutex_);
  require_running_locked();
  generations_.require_current(header.site, header.generation, "update");
  liveness_.seen(header.site);
  check_result_fits_locked(header.site, header.round, "update");
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
  liveness_.seen(site);
  check_result_fits_locked(site, update.round, "update");
  const std::string round = "round " + std::to_string(update.round + 1);
  apply_locked("the update from " + site + " for " + round, [&] {
    intake.commit();
    responded_.insert(site);
    round_images_ += update.num_samples;
    round_train_seconds_ = std::max(round_train_seconds_, update.train_seconds);
    out_.events.site_trained(update);
    record_evaluation_locked(update.round, site, update.evaluation);
    settle_round_locked(false);
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
  // The round's model was measured by the sites that trained from it.
  close_figures_locked(round_);
  if (phase_ == Phase::Failed) return;
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
  if (!write_checkpoint_locked(model_round)) return;

  if (model_round < settings_.num_rounds) {
    start_round_locked(model_round);
    return;
  }
  start_final_evaluation_locked();
}

void Controller::start_final_evaluation_locked() {
  const auto sites = sites_in_job_locked();
  if (sites.size() < min_clients()) {
    fail_locked("the final evaluation cannot start: job.min_clients is " +
                std::to_string(min_clients()) + " and " + std::to_string(sites.size()) +
                " sites are in the job; gone: " + sites_gone_locked());
    return;
  }
  phase_ = Phase::FinalEvaluation;
  sampled_ = {sites.begin(), sites.end()};
  assigned_.clear();
  responded_.clear();
  left_round_.clear();
  phase_started_ = Clock::now();
  out_.events.final_evaluation_started();
  changed_.notify_all();
}

bool Controller::write_checkpoint_locked(int64_t model_round) {
  if (settings_.checkpoint_dir.empty()) return true;
  try {
    std::lock_guard gate(aggregator_.mutex);
    host::AggregatorInstance::State state;
    if (aggregator_.plugin.has_state()) state = aggregator_.plugin.get_state();
    const auto best = board_.best();
    const nlohmann::json best_json = {{"key_metric", board_.key_metric()},
                                      {"value", best ? nlohmann::json(*best) : nlohmann::json()}};
    const std::string best_text = best_json.dump();
    const std::string rng = sampler_.state();
    checkpoint::write_checkpoint(settings_.checkpoint_dir,
                                 {.round = model_round,
                                  .global_model = global_->views(),
                                  .aggregator_tensors = state.tensors,
                                  .aggregator_meta_json = state.meta_json,
                                  .best_model_json = best_text,
                                  .rng_state = rng,
                                  .job_fingerprint = settings_.job_fingerprint},
                                 settings_.keep_checkpoints);
  } catch (const host::PluginCallError& e) {
    aggregator_failed_locked(e);
    return false;
  } catch (const std::exception& e) {
    // A round not made durable would be lost to a crash: stop here.
    fail_locked("the server failed: writing the checkpoint of round " +
                std::to_string(model_round) + ": " + e.what());
    return false;
  }
  return true;
}

void Controller::accept_evaluation(const SiteEvaluation& evaluation) {
  std::lock_guard lock(mutex_);
  require_running_locked();
  const std::string& site = evaluation.site;
  generations_.require_current(site, evaluation.generation, "evaluation");
  liveness_.seen(site);
  if (phase_ != Phase::FinalEvaluation) throw RejectedRequest("unexpected evaluation from " + site);
  check_result_fits_locked(site, evaluation.round, "evaluation");
  responded_.insert(site);
  apply_locked("the evaluation from " + site, [&] {
    record_evaluation_locked(evaluation.round, site, evaluation.evaluation);
    settle_round_locked(false);
  });
}

void Controller::record_evaluation_locked(int64_t model_round, const std::string& site,
                                          const nlohmann::json& evaluation) {
  // Complete only when its round closes: how many sites measure a model is
  // known then (a round may close without its stragglers).
  board_.record(model_round, site, evaluation, std::numeric_limits<size_t>::max());
}

void Controller::close_figures_locked(int64_t model_round) {
  const auto figures = board_.close(model_round);
  const auto measured = awaiting_evaluation_.find(model_round);
  if (!figures || measured == awaiting_evaluation_.end()) return;
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
  if (f.best) out_.models.save_best(model_round, measured->second->views(), *figures);
  awaiting_evaluation_.erase(measured);
  out_.events.model_measured(f, out_.models.kept_global(model_round));
}

void Controller::progress(const SiteProgress& p) {
  generations_.require_current(p.site, p.generation, "progress report");
  liveness_.seen(p.site);
  out_.events.site_progress(p);
}

void Controller::site_metrics(const SiteMetrics& m) {
  std::lock_guard lock(mutex_);
  require_running_locked();
  generations_.require_current(m.site, m.generation, "metrics report");
  liveness_.seen(m.site);
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
    if (!consequence_) {
      consequence_ = reason, consequence_site_ = f.site, consequence_at_ = Clock::now();
    }
    return;
  }
  // The site's group is over: it leaves the job, which goes on while
  // min_clients can still answer.
  drop_site_locked(f.site, reason);
}

void Controller::site_refused(const SiteRefusal& r) {
  std::lock_guard lock(mutex_);
  require_running_locked();
  apply_locked("a refusal from " + r.site, [&] { out_.events.site_refused(r); });
  drop_site_locked(r.site, r.site + " refused the job: " + r.reason);
}

void Controller::heartbeat(const std::string& site, int64_t generation) {
  generations_.require_current(site, generation, "heartbeat");
  liveness_.seen(site);
}

void Controller::site_lost(const std::string& site, const std::string& reason) {
  std::lock_guard lock(mutex_);
  if (phase_ == Phase::Finished || phase_ == Phase::Failed) return;
  // A site's own report says more than "its process ended".
  if (consequence_ && consequence_site_ == site) {
    const std::string why = *consequence_;
    consequence_.reset();
    drop_site_locked(site, why);
    return;
  }
  if (gone_.contains(site)) return;  // its own report came first
  drop_site_locked(site, reason);
}

void Controller::drop_site_locked(const std::string& site, const std::string& reason) {
  if (phase_ == Phase::Finished || phase_ == Phase::Failed) return;
  generations_.drop(site, reason);
  liveness_.forget(site);
  in_job_.erase(site);
  gone_[site] = reason;
  int64_t from_round = -1;
  if (sampled_.contains(site) && !responded_.contains(site)) {
    // Its unanswered task (and any upload of it still streaming) is void.
    sampled_.erase(site);
    assigned_.erase(site);
    left_round_[site] = reason;
    from_round = phase_ == Phase::Training ? round_ : settings_.num_rounds;
  }
  out_.events.site_dropped(site, from_round, reason);
  switch (phase_) {
    case Phase::Registering:
      if (settings_.sites.size() - gone_.size() < min_clients()) {
        fail_locked("job.min_clients (" + std::to_string(min_clients()) +
                    ") sites can no longer register: " + sites_gone_locked());
      } else {
        begin_when_all_registered_locked();  // the others may all be in already
      }
      break;
    case Phase::InitialModel:
      if (site == initial_site_) {
        const auto sites = sites_in_job_locked();
        if (sites.empty()) {
          fail_locked("no site is left to send the initial model: " + sites_gone_locked());
        } else {
          initial_site_ = sites.front();
          assigned_.clear();
        }
      }
      break;
    case Phase::Training:
    case Phase::FinalEvaluation: settle_round_locked(false); break;
    case Phase::Finished:
    case Phase::Failed: break;
  }
  changed_.notify_all();
}

void Controller::settle_round_locked(bool deadline_passed) {
  if (phase_ != Phase::Training && phase_ != Phase::FinalEvaluation) return;
  std::vector<std::string> pending;
  for (const auto& s : settings_.sites)
    if (sampled_.contains(s) && !responded_.contains(s)) pending.push_back(s);
  const size_t need = min_clients();
  const size_t have = responded_.size();
  const bool training = phase_ == Phase::Training;
  const int64_t round = training ? round_ : settings_.num_rounds;
  const std::string what = training ? "round " + std::to_string(round + 1) : "the final evaluation";
  if (have >= need && (pending.empty() || deadline_passed)) {
    if (!pending.empty()) {
      for (const auto& s : pending) stragglers_.insert({s, round});
      out_.events.round_closed_without(round, pending);
    }
    if (training) {
      complete_round_locked();
    } else {
      close_figures_locked(settings_.num_rounds);
      phase_ = Phase::Finished;
      out_.events.job_finished();
      changed_.notify_all();
    }
    return;
  }
  std::string left;
  for (const auto& [s, why] : left_round_) left += (left.empty() ? "" : "; ") + s + ": " + why;
  if (have + pending.size() < need) {
    fail_locked(what + " cannot reach job.min_clients (" + std::to_string(need) + "): " +
                std::to_string(have) + " answered and " + std::to_string(pending.size()) +
                " can still answer; " + (left.empty() ? "gone: " + sites_gone_locked() : left));
  } else if (deadline_passed) {
    std::string names;
    for (const auto& s : pending) names += (names.empty() ? "" : ", ") + s;
    fail_locked(what + " timed out after " +
                std::to_string(settings_.round_timeout.count() / 1000.0) +
                " s (server.round_timeout_s) with " + std::to_string(have) +
                " of job.min_clients (" + std::to_string(need) + ") results: no answer from " +
                names);
  }
}

void Controller::resume_from(checkpoint::RoundCheckpoint checkpoint,
                             const std::filesystem::path& file,
                             const std::vector<std::string>& refused) {
  std::lock_guard lock(mutex_);
  if (phase_ != Phase::Registering || resumed_round_)
    throw std::logic_error("Controller::resume_from: the job has already begun");
  if (checkpoint.round > settings_.num_rounds)
    throw std::invalid_argument("checkpoint " + file.string() + " is of round " +
                                std::to_string(checkpoint.round) + ", past the job's " +
                                std::to_string(settings_.num_rounds) + " rounds");
  {
    std::lock_guard gate(aggregator_.mutex);
    if (!checkpoint.aggregator.tensors.empty() || !checkpoint.aggregator.meta_json.empty())
      aggregator_.plugin.set_state(tensor::views_of(checkpoint.aggregator.tensors),
                                   checkpoint.aggregator.meta_json);
  }
  if (!checkpoint.rng_state.empty()) sampler_.restore(checkpoint.rng_state);
  if (!checkpoint.best_model_json.empty()) {
    const auto best = nlohmann::json::parse(checkpoint.best_model_json);
    if (best.contains("value") && best["value"].is_number())
      board_.restore_best(best["value"].get<double>());
  }
  key_metric_checked_ = true;  // said in the run that began the job
  round_ = checkpoint.round;
  global_ = std::make_shared<const GlobalModel>(checkpoint.round,
                                                std::move(checkpoint.global_model));
  awaiting_evaluation_[checkpoint.round] = global_;
  resumed_round_ = checkpoint.round;
  out_.events.job_resumed(checkpoint.round, file, refused);
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
  const auto seconds = [](std::chrono::milliseconds d) { return std::to_string(d.count() / 1000.0); };
  if (consequence_ && Clock::now() - consequence_at_ > kConsequenceGrace) {
    const std::string why = *consequence_;
    consequence_.reset();
    drop_site_locked(consequence_site_, why);
  }
  if (phase_ == Phase::Finished || phase_ == Phase::Failed) return;
  // This loop runs every 200 ms; a much longer gap means the server itself
  // was stopped (SIGSTOP, a frozen VM): the silence it could not hear is not
  // the sites', so every site's grace starts again.
  const auto now = Clock::now();
  if (now - last_check_ > std::max<Clock::duration>(settings_.heartbeat_timeout / 2,
                                                    std::chrono::seconds(2))) {
    for (const auto& site : in_job_) liveness_.seen(site);
  }
  last_check_ = now;
  for (const auto& [site, silent_s] : liveness_.silent_longer_than(settings_.heartbeat_timeout)) {
    if (!in_job_.contains(site)) continue;
    char why[160];
    std::snprintf(why, sizeof(why), "silent for %.1f s (server.heartbeat_timeout_s = %g)",
                  silent_s, settings_.heartbeat_timeout.count() / 1000.0);
    drop_site_locked(site, why);
    if (phase_ == Phase::Finished || phase_ == Phase::Failed) return;
  }
  if (phase_ == Phase::Registering && elapsed > settings_.start_timeout) {
    // The job starts with min_clients sites; the others may join later.
    if (in_job_.size() >= min_clients()) {
      begin_job_locked();
      return;
    }
    std::string missing;
    constexpr int kNamed = 10;  // a job of thousands of sites would print them all
    int count = 0;
    for (const auto& s : settings_.sites) {
      if (in_job_.contains(s)) continue;
      if (++count <= kNamed) missing += (missing.empty() ? "" : ", ") + s;
    }
    if (count > kNamed) missing += " and " + std::to_string(count - kNamed) + " more";
    fail_locked("sites did not register within " + seconds(settings_.start_timeout) +
                " s (server.worker_start_timeout_s): missing " + missing);
  } else if (phase_ == Phase::InitialModel && elapsed > settings_.round_timeout) {
    fail_locked("the initial model did not arrive within " + seconds(settings_.round_timeout) +
                " s (server.round_timeout_s): no answer from " + initial_site_);
  } else if ((phase_ == Phase::Training || phase_ == Phase::FinalEvaluation) &&
             elapsed > settings_.round_timeout) {
    settle_round_locked(true);
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
