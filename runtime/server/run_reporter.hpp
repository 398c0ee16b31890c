// The job's events as the user and the tools see them: one metrics.jsonl line
// per site per round ("kind": "site"), per step a site reported figures at
// ("kind": "train_step"), per measured global model
// ("kind": "global"), one per rank failure reported or aggregator failure
// ("kind": "failure"), one per warning ("kind": "warning"), one per site
// dropped or rejoined ("site_dropped", "site_rejoined", with the wall-clock
// "time"), round closed without stragglers ("stragglers"), late result
// refused ("late_result"), one when a job resumes ("resumed") and one when
// the job ends ("kind": "job"); a line on the terminal for each step of the job,
// and the server log.
#pragma once

#include <memory>
#include <mutex>
#include <set>
#include <string>

#include <spdlog/spdlog.h>

#include "server/job_events.hpp"
#include "server/progress_display.hpp"
#include "storage/metrics_log.hpp"

namespace flare::server {

class RunReporter final : public JobEvents {
 public:
  // All borrowed; they must outlive the reporter.
  RunReporter(storage::MetricsLog& metrics, ProgressDisplay& display,
              std::shared_ptr<spdlog::logger> log, int64_t num_rounds);

  void site_joined(const SiteJoin& join, int64_t generation, bool rejoined) override;
  void initial_model_received(const std::string& site, const GlobalModel& model) override;
  void round_started(int64_t round, const std::vector<std::string>& sites) override;
  void site_dropped(const std::string& site, int64_t round, const std::string& reason) override;
  void round_closed_without(int64_t round, const std::vector<std::string>& sites) override;
  void late_result_refused(const std::string& site, int64_t round) override;
  void job_resumed(int64_t round, const std::filesystem::path& file,
                   const std::vector<std::string>& refused) override;
  void site_trained(const SiteUpdate& update) override;
  void round_aggregated(const GlobalModel& model, const std::filesystem::path& saved_to,
                        const nlohmann::json& aggregator_figures) override;
  void final_evaluation_started() override;
  void model_measured(const RoundFigures& figures,
                      const std::filesystem::path& model_file) override;
  void key_metric_missing(const std::string& key_metric,
                          const std::vector<std::string>& reported) override;
  void site_progress(const SiteProgress& progress) override;
  void site_metrics(const SiteMetrics& metrics) override;
  void rank_failed(const RankFailure& failure, FailureHandling handling) override;
  void site_refused(const SiteRefusal& refusal) override;
  void aggregator_failed(const AggregatorFailure& failure) override;
  void job_failed(const std::string& reason) override;
  void job_finished() override;

 private:
  std::string round_label(int64_t round) const;  // "round 2/5"

  storage::MetricsLog& metrics_;
  ProgressDisplay& display_;
  std::shared_ptr<spdlog::logger> log_;
  int64_t num_rounds_;
  std::mutex mutex_;
  std::set<std::string> data_announced_;  // sites whose training data was shown
  int64_t rounds_completed_ = 0;          // for the job line
};

}  // namespace flare::server
