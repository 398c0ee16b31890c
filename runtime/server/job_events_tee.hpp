// Hands every job event to several listeners in turn (the run reporter, then
// the TensorBoard tracker), so the controller keeps talking to one JobEvents.
#pragma once

#include <initializer_list>
#include <vector>

#include "server/job_events.hpp"

namespace flare::server {

class JobEventsTee final : public JobEvents {
 public:
  // Borrowed; called in this order. A listener that throws stops the others
  // for that event, as the controller would see it with one listener.
  JobEventsTee(std::initializer_list<JobEvents*> listeners) : listeners_(listeners) {}

  void site_joined(const SiteJoin& join, int64_t generation, bool rejoined) override {
    for (auto* l : listeners_) l->site_joined(join, generation, rejoined);
  }
  void initial_model_received(const std::string& site, const GlobalModel& model) override {
    for (auto* l : listeners_) l->initial_model_received(site, model);
  }
  void round_started(int64_t round, const std::vector<std::string>& sites) override {
    for (auto* l : listeners_) l->round_started(round, sites);
  }
  void site_dropped(const std::string& site, int64_t round, const std::string& reason) override {
    for (auto* l : listeners_) l->site_dropped(site, round, reason);
  }
  void round_closed_without(int64_t round, const std::vector<std::string>& sites) override {
    for (auto* l : listeners_) l->round_closed_without(round, sites);
  }
  void late_result_refused(const std::string& site, int64_t round) override {
    for (auto* l : listeners_) l->late_result_refused(site, round);
  }
  void job_resumed(int64_t round, const std::filesystem::path& file,
                   const std::vector<std::string>& refused) override {
    for (auto* l : listeners_) l->job_resumed(round, file, refused);
  }
  void site_trained(const SiteUpdate& update) override {
    for (auto* l : listeners_) l->site_trained(update);
  }
  void round_aggregated(const GlobalModel& model, const std::filesystem::path& saved_to,
                        const nlohmann::json& aggregator_figures) override {
    for (auto* l : listeners_) l->round_aggregated(model, saved_to, aggregator_figures);
  }
  void final_evaluation_started() override {
    for (auto* l : listeners_) l->final_evaluation_started();
  }
  void model_measured(const RoundFigures& figures,
                      const std::filesystem::path& model_file) override {
    for (auto* l : listeners_) l->model_measured(figures, model_file);
  }
  void key_metric_missing(const std::string& key_metric,
                          const std::vector<std::string>& reported) override {
    for (auto* l : listeners_) l->key_metric_missing(key_metric, reported);
  }
  void site_progress(const SiteProgress& progress) override {
    for (auto* l : listeners_) l->site_progress(progress);
  }
  void site_metrics(const SiteMetrics& metrics) override {
    for (auto* l : listeners_) l->site_metrics(metrics);
  }
  void rank_failed(const RankFailure& failure, FailureHandling handling) override {
    for (auto* l : listeners_) l->rank_failed(failure, handling);
  }
  void site_refused(const SiteRefusal& refusal) override {
    for (auto* l : listeners_) l->site_refused(refusal);
  }
  void aggregator_failed(const AggregatorFailure& failure) override {
    for (auto* l : listeners_) l->aggregator_failed(failure);
  }
  void job_failed(const std::string& reason) override {
    for (auto* l : listeners_) l->job_failed(reason);
  }
  void job_finished() override {
    for (auto* l : listeners_) l->job_finished();
  }

 private:
  std::vector<JobEvents*> listeners_;
};

}  // namespace flare::server
