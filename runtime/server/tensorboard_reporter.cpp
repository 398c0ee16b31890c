#include "server/tensorboard_reporter.hpp"

#include "server/evaluation_board.hpp"

namespace flare::server {

namespace {

constexpr const char* kGlobalRun = "global";

// Every finite number of a flat object, as "<prefix>/<name>".
void scalars(tracking::EventFile& file, const std::string& prefix, const nlohmann::json& values,
             int64_t step) {
  for (const auto& [name, value] : values.items())
    if (value.is_number()) file.scalar(prefix + "/" + name, value.get<double>(), step);
}

}  // namespace

TensorBoardReporter::TensorBoardReporter(std::filesystem::path root, ProgressDisplay& display,
                                         std::shared_ptr<spdlog::logger> log)
    : root_(std::move(root)), display_(display), log_(std::move(log)) {}

template <class Write>
void TensorBoardReporter::record(const std::string& run, Write&& write) {
  std::lock_guard lock(mutex_);
  if (stopped_) return;
  try {
    auto& file = files_[run];
    if (!file) file = std::make_unique<tracking::EventFile>(run_dir(run));
    write(*file);
  } catch (const std::exception& e) {
    stop_locked(e.what());
  }
}

void TensorBoardReporter::stop_locked(const std::string& why) {
  stopped_ = true;
  files_.clear();
  const std::string text = "tracking stopped: " + why +
                           "; the TensorBoard files end here, metrics.jsonl has every figure";
  log_->error("{}", text);
  display_.message("warning: " + text);
}

void TensorBoardReporter::site_metrics(const SiteMetrics& m) {
  record(m.site, [&](tracking::EventFile& file) {
    for (const MetricPoint& p : m.points) file.scalar("train/" + p.name, p.value, p.step);
  });
}

void TensorBoardReporter::site_trained(const SiteUpdate& u) {
  record(u.site, [&](tracking::EventFile& file) {
    const int64_t trained = u.round + 1;  // the model this update makes
    scalars(file, "round", u.train_metrics, trained);
    file.scalar("round/train_seconds", u.train_seconds, trained);
    if (u.train_seconds > 0)
      file.scalar("round/images_per_s", u.num_samples / u.train_seconds, trained);
    // The site's figures of the global model it received (that of round u.round).
    scalars(file, "eval", flatten_evaluation(u.evaluation), u.round);
  });
}

void TensorBoardReporter::model_measured(const RoundFigures& f, const std::filesystem::path&) {
  record(kGlobalRun, [&](tracking::EventFile& file) {
    scalars(file, "eval", f.metrics, f.model_round);
    if (f.round_seconds >= 0) file.scalar("round/round_seconds", f.round_seconds, f.model_round);
    if (f.images_per_s >= 0) file.scalar("round/images_per_s", f.images_per_s, f.model_round);
    scalars(file, "aggregator", f.aggregator, f.model_round);
  });
}

void TensorBoardReporter::flush_all() {
  std::lock_guard lock(mutex_);
  if (stopped_) return;
  try {
    for (auto& [run, file] : files_) file->flush();
  } catch (const std::exception& e) {
    stop_locked(e.what());
  }
}

void TensorBoardReporter::round_aggregated(const GlobalModel&, const std::filesystem::path&,
                                           const nlohmann::json&) {
  flush_all();
}
void TensorBoardReporter::job_failed(const std::string&) { flush_all(); }
void TensorBoardReporter::job_finished() { flush_all(); }

}  // namespace flare::server
