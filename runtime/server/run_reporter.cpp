#include "server/run_reporter.hpp"

#include <chrono>
#include <cstdio>
#include <cstring>

#include "server/evaluation_board.hpp"

namespace flare::server {

namespace {

std::string format_fixed(double v, int decimals) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, v);
  return buf;
}

const char* action_name(FailureHandling handling) {
  switch (handling) {
    case FailureHandling::Restarting: return "restart";
    case FailureHandling::AlreadyRestarting: return "already_restarting";
    case FailureHandling::EndsJob: return "fail_job";
  }
  return "unknown";
}

// {"exit_code": 1}, {"signal": 9, "signal_name": "SIGKILL"}, {"hang_s": 2.1}
// or {} when the site did not say.
nlohmann::json cause_of(const RankFailure& f) {
  nlohmann::json cause = nlohmann::json::object();
  if (f.exit_code) cause["exit_code"] = *f.exit_code;
  if (f.signal) {
    cause["signal"] = *f.signal;
    if (const char* name = sigabbrev_np(*f.signal)) cause["signal_name"] = std::string("SIG") + name;
  }
  if (f.hang_s) cause["hang_s"] = *f.hang_s;
  return cause;
}

}  // namespace

namespace {

// Wall-clock seconds since the epoch: lines about liveness say when, so a
// site's death can be set against its drop.
double unix_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

RunReporter::RunReporter(storage::MetricsLog& metrics, ProgressDisplay& display,
                         std::shared_ptr<spdlog::logger> log, int64_t num_rounds)
    : metrics_(metrics), display_(display), log_(std::move(log)), num_rounds_(num_rounds) {}

std::string RunReporter::round_label(int64_t round) const {
  return "round " + std::to_string(round + 1) + "/" + std::to_string(num_rounds_);
}

void RunReporter::site_joined(const SiteJoin& join, int64_t generation, bool rejoined) {
  if (rejoined) {
    log_->info("{} registered again (worker group generation {})", join.site, generation);
    metrics_.append({{"kind", "site_rejoined"},
                     {"site", join.site},
                     {"generation", generation},
                     {"time", unix_seconds()}});
    display_.message(join.site + " rejoined (worker group generation " +
                     std::to_string(generation) + ")");
    return;
  }
  log_->info("{} registered ({} worker ranks)", join.site, join.world_size);
  display_.message(join.site + " joined with " + std::to_string(join.world_size) +
                   " worker ranks");
}

void RunReporter::initial_model_received(const std::string& site, const GlobalModel& model) {
  log_->info("initial model from {}: {} tensors", site, model.tensors().size());
}

void RunReporter::round_started(int64_t round, const std::vector<std::string>& sites) {
  std::string names;
  for (const auto& s : sites) names += (names.empty() ? "" : ", ") + s;
  log_->info("{}: sites {}", round_label(round), names);
  display_.message(round_label(round) + ": training on " + std::to_string(sites.size()) + " sites");
}

void RunReporter::site_dropped(const std::string& site, int64_t round, const std::string& reason) {
  metrics_.append({{"kind", "site_dropped"},
                   {"site", site},
                   {"round", round >= 0 ? nlohmann::json(round + 1) : nlohmann::json()},
                   {"reason", reason},
                   {"time", unix_seconds()}});
  log_->warn("{} dropped{}: {}", site, round >= 0 ? " from " + round_label(round) : "", reason);
  display_.message(site + " dropped" + (round >= 0 ? " from " + round_label(round) : "") + ": " +
                   reason);
}

void RunReporter::round_closed_without(int64_t round, const std::vector<std::string>& sites) {
  metrics_.append({{"kind", "stragglers"}, {"round", round + 1}, {"sites", sites}});
  std::string names;
  for (const auto& s : sites) names += (names.empty() ? "" : ", ") + s;
  log_->warn("{} closed at its deadline without {}: their late results will be refused",
             round_label(round), names);
  display_.message(round_label(round) + " closed at its deadline without " + names);
}

void RunReporter::late_result_refused(const std::string& site, int64_t round) {
  metrics_.append({{"kind", "late_result"}, {"site", site}, {"round", round + 1}});
}

void RunReporter::job_resumed(int64_t round, const std::filesystem::path& file,
                              const std::vector<std::string>& refused) {
  rounds_completed_ = round;
  metrics_.append({{"kind", "resumed"},
                   {"after_round", round},
                   {"checkpoint", file.string()},
                   {"refused", refused},
                   {"time", unix_seconds()}});
  for (const auto& why : refused) {
    log_->warn("checkpoint refused: {}", why);
    display_.message("checkpoint refused: " + why);
  }
  log_->info("resuming after round {} from {}", round, file.string());
  display_.message("resuming after round " + std::to_string(round) + " (checkpoint " +
                   file.filename().string() + ")");
}

void RunReporter::site_trained(const SiteUpdate& update) {
  const double images_per_s =
      update.train_seconds > 0 ? update.num_samples / update.train_seconds : 0.0;
  // The record's own fields win over a training metric of the same name.
  nlohmann::json line = update.train_metrics;
  line.update({{"kind", "site"},
               {"round", update.round + 1},
               {"site", update.site},
               {"num_samples", update.num_samples},
               {"num_steps", update.num_steps},
               {"train_seconds", update.train_seconds},
               {"images_per_s", images_per_s},
               {"received_model", flatten_evaluation(update.evaluation)}});
  metrics_.append(line);

  const auto loss = update.train_metrics.find("train_loss");
  display_.message(round_label(update.round) + "  " + update.site + " done: " +
                   format_fixed(update.num_samples, 0) + " samples, " +
                   format_fixed(images_per_s, 0) + " images/s" +
                   (loss != update.train_metrics.end() && loss->is_number()
                        ? ", train_loss " + format_fixed(loss->get<double>(), 4)
                        : std::string()));

  const auto data = update.meta.find("data");
  if (data == update.meta.end() || !data->is_string()) return;
  std::lock_guard lock(mutex_);
  if (!data_announced_.insert(update.site).second) return;
  display_.message(update.site + " trains on " + data->get<std::string>());
  log_->info("{} trains on {}", update.site, data->get<std::string>());
}

void RunReporter::round_aggregated(const GlobalModel& model,
                                   const std::filesystem::path& saved_to,
                                   const nlohmann::json& aggregator_figures) {
  rounds_completed_ = model.model_round();
  if (!aggregator_figures.empty()) {
    nlohmann::json line = {{"kind", "aggregator"}, {"round", model.model_round()}};
    std::string text = "aggregator, " + round_label(model.model_round() - 1) + ":";
    for (const auto& [name, value] : aggregator_figures.items()) {
      line[name] = value;
      text += "  " + name + " " + format_fixed(value.get<double>(), 4);
    }
    metrics_.append(line);
    display_.message(text);
    log_->info("{}", text);
  }
  if (saved_to.empty())
    log_->info("round {} aggregated; global model not saved (server.save_every)",
               model.model_round());
  else
    log_->info("round {} aggregated; global model saved to {}", model.model_round(),
               saved_to.string());
}

void RunReporter::final_evaluation_started() {
  display_.message("evaluating the final global model");
}

void RunReporter::model_measured(const RoundFigures& f, const std::filesystem::path& model_file) {
  nlohmann::json line = {{"kind", "global"},
                         {"round", f.model_round},
                         {"best", f.best},
                         {"model", model_file.empty() ? nlohmann::json()
                                                      : nlohmann::json(model_file.filename().string())}};
  for (const auto& [k, v] : f.metrics.items()) line[k] = v;
  if (f.round_seconds >= 0) line["round_seconds"] = f.round_seconds;
  if (f.images_per_s >= 0) line["images_per_s"] = f.images_per_s;
  metrics_.append(line);

  std::string text = f.model_round == 0
                         ? "initial global model"
                         : "global model after round " + std::to_string(f.model_round);
  for (const auto& [k, v] : f.metrics.items())
    if (v.is_number()) text += "  " + k + " " + format_fixed(v.get<double>(), 4);
  display_.message(text + (f.best ? "  (best so far)" : ""));
}

void RunReporter::key_metric_missing(const std::string& key_metric,
                                     const std::vector<std::string>& reported) {
  std::string names;
  for (const std::string& name : reported) names += (names.empty() ? "" : ", ") + name;
  const std::string text =
      "server.key_metric = \"" + key_metric + "\" is not among the figures the sites report (" +
      (names.empty() ? "none" : names) + "): no best model (best.safetensors) will be written";
  metrics_.append({{"kind", "warning"},
                   {"about", "server.key_metric"},
                   {"key_metric", key_metric},
                   {"reported", reported},
                   {"message", text}});
  log_->warn("{}", text);
  display_.message("warning: " + text);
}

void RunReporter::site_progress(const SiteProgress& p) {
  display_.site_progress(p.site, p.round, p.phase, p.epoch, p.step, p.total);
}

void RunReporter::site_metrics(const SiteMetrics& m) {
  for (const std::string& dropped : m.dropped)
    log_->warn("{} reported a metric that is not a finite number, dropped: {}", m.site, dropped);
  // One line per step: the points of a step arrive one after another.
  for (size_t begin = 0, end = 0; begin < m.points.size(); begin = end) {
    const MetricPoint& first = m.points[begin];
    nlohmann::json line = nlohmann::json::object();
    for (end = begin; end < m.points.size() && m.points[end].step == first.step &&
                      m.points[end].round == first.round;
         ++end)
      line[m.points[end].name] = m.points[end].value;
    // The record's own fields win over a metric of the same name.
    line.update({{"kind", "train_step"},
                 {"site", m.site},
                 {"round", first.round + 1},
                 {"step", first.step},
                 {"epoch", first.epoch}});
    metrics_.append(line);
  }
}

void RunReporter::rank_failed(const RankFailure& f, FailureHandling handling) {
  metrics_.append({{"kind", "failure"},
                   {"site", f.site},
                   {"node", f.node_rank},
                   {"rank", f.rank},
                   {"generation", f.generation},
                   {"in_collective", f.in_collective},
                   {"cause", cause_of(f)},
                   {"action", action_name(handling)},
                   {"restarts_left", f.restarts_left}});
  const std::string what = f.summary();
  switch (handling) {
    case FailureHandling::AlreadyRestarting:
      log_->warn("{} (node {}, generation {}; its worker group is already restarting)\n"
                 "last lines of its log:\n{}",
                 what, f.node_rank, f.generation, f.log_tail);
      // A rank that broke in a collective only echoes the failure already shown.
      if (!f.in_collective) display_.message(what + " (its worker group is already restarting)");
      return;
    case FailureHandling::Restarting:
      log_->warn("{}; restarting its worker group ({} restarts left)\nlast lines of its log:\n{}",
                 what, f.restarts_left, f.log_tail);
      display_.message(what + "; restarting its worker group (" +
                       std::to_string(f.restarts_left) + " restarts left)");
      return;
    case FailureHandling::EndsJob:
      return;  // job_failed says it, with the cause that wins
  }
}

void RunReporter::site_refused(const SiteRefusal& r) {
  metrics_.append(
      {{"kind", "refusal"}, {"site", r.site}, {"node", r.node_rank}, {"reason", r.reason}});
  // job_failed follows with the same words, on the terminal too.
  log_->error("{} (node {}) refused the job: {}", r.site, r.node_rank, r.reason);
}

void RunReporter::aggregator_failed(const AggregatorFailure& f) {
  // Where: the aggregator, not a site; job_failed then says it on the terminal.
  metrics_.append({{"kind", "failure"},
                   {"aggregator", f.plugin},
                   {"file", f.file},
                   {"call", f.call},
                   {"error", f.error},
                   {"action", action_name(FailureHandling::EndsJob)}});
}

void RunReporter::job_failed(const std::string& reason) {
  metrics_.append({{"kind", "job"},
                   {"status", "failed"},
                   {"reason", reason},
                   {"rounds_completed", rounds_completed_}});
  log_->error("job failed: {}", reason);
}

void RunReporter::job_finished() {
  metrics_.append({{"kind", "job"}, {"status", "succeeded"}, {"rounds_completed", rounds_completed_}});
  log_->info("job finished");
}

}  // namespace flare::server
