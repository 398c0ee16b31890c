// The job's figures as TensorBoard event files (job.use_tracking), one run
// folder per site and one for the global model under the run's
// tensorboard/ folder: per step, what the site's trainer reported
// ("train/<name>", x = the site's optimizer step); per round, the site's
// training figures and its evaluation of the global model it received
// ("round/...", "eval/..."), the global model's figures, round timings and
// the aggregator's own ("eval/...", "round/...", "aggregator/...", x = the
// model's round). Flushed at each round's end and the job's. A file that
// cannot be written is said once (log and terminal) and tracking stops;
// the job and metrics.jsonl go on.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <spdlog/spdlog.h>

#include "server/job_events.hpp"
#include "server/progress_display.hpp"
#include "tracking/event_file.hpp"

namespace flare::server {

class TensorBoardReporter final : public JobEvents {
 public:
  // `display` and `log` borrowed; nothing is created before the first figure.
  TensorBoardReporter(std::filesystem::path root, ProgressDisplay& display,
                      std::shared_ptr<spdlog::logger> log);

  void site_joined(const SiteJoin&, int64_t, bool) override {}
  void initial_model_received(const std::string&, const GlobalModel&) override {}
  void round_started(int64_t, const std::vector<std::string>&) override {}
  void site_dropped(const std::string&, int64_t, const std::string&) override {}
  void round_closed_without(int64_t, const std::vector<std::string>&) override {}
  void late_result_refused(const std::string&, int64_t) override {}
  void job_resumed(int64_t, const std::filesystem::path&, const std::vector<std::string>&) override {}
  void site_trained(const SiteUpdate& update) override;
  void round_aggregated(const GlobalModel&, const std::filesystem::path&,
                        const nlohmann::json&) override;
  void final_evaluation_started() override {}
  void model_measured(const RoundFigures& figures, const std::filesystem::path&) override;
  void key_metric_missing(const std::string&, const std::vector<std::string>&) override {}
  void site_progress(const SiteProgress&) override {}
  void site_metrics(const SiteMetrics& metrics) override;
  void rank_failed(const RankFailure&, FailureHandling) override {}
  void site_refused(const SiteRefusal&) override {}
  void aggregator_failed(const AggregatorFailure&) override {}
  void job_failed(const std::string&) override;
  void job_finished() override;

  // The folder of a run ("global" or a site's name).
  std::filesystem::path run_dir(const std::string& run) const { return root_ / run; }

 private:
  // Writes what `write` writes into `run`'s file; a failure stops tracking.
  template <class Write>
  void record(const std::string& run, Write&& write);
  void flush_all();
  void stop_locked(const std::string& why);

  std::filesystem::path root_;
  ProgressDisplay& display_;
  std::shared_ptr<spdlog::logger> log_;
  std::mutex mutex_;
  std::map<std::string, std::unique_ptr<tracking::EventFile>> files_;  // by run
  bool stopped_ = false;
};

}  // namespace flare::server
