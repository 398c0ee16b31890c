// What the controller tells the outside world as the job goes on. The
// controller calls these in the order things happen, one at a time (under its
// lock), except site_progress, which RPC threads call concurrently.
// RunReporter writes them to metrics.jsonl, the terminal and the server log;
// a tracker (TensorBoard, MLflow) would be another implementation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "server/domain.hpp"
#include "server/global_model.hpp"

namespace flare::server {

// How the controller handles a reported rank failure.
enum class FailureHandling {
  Restarting,         // the first report of its generation: the group restarts
  AlreadyRestarting,  // another node reported this generation's failure first
  EndsJob,  // the job fails (at once, or after a collective failure's grace for its cause)
};

class JobEvents {
 public:
  virtual ~JobEvents() = default;

  // `generation`: the one the server handed the site's worker group.
  virtual void site_joined(const SiteJoin& join, int64_t generation, bool rejoined) = 0;
  virtual void initial_model_received(const std::string& site, const GlobalModel& model) = 0;
  // `sites`: the round's, drawn from those in the job (job.clients_per_round).
  virtual void round_started(int64_t round, const std::vector<std::string>& sites) = 0;
  // The server gave up on a site: silent past server.heartbeat_timeout_s, its
  // processes ended, its group failed for good, or its policy refused the
  // job. `round`: the round it was dropped from (-1: it had none unanswered).
  // It may register again (site_joined, rejoined).
  virtual void site_dropped(const std::string& site, int64_t round, const std::string& reason) = 0;
  // Round `round` closed at its deadline with job.min_clients results, without
  // these sampled sites' (the stragglers: their late results are refused).
  virtual void round_closed_without(int64_t round, const std::vector<std::string>& sites) = 0;
  // A straggler's result for a closed round arrived and was refused.
  virtual void late_result_refused(const std::string& site, int64_t round) = 0;
  // The job goes on after round `round` from checkpoint `file`; `refused`:
  // each newer checkpoint skipped, with why.
  virtual void job_resumed(int64_t round, const std::filesystem::path& file,
                           const std::vector<std::string>& refused) = 0;
  // Called once the update was folded into the round's aggregate.
  virtual void site_trained(const SiteUpdate& update) = 0;
  // `aggregator_figures`: what the aggregator reported for the round (an
  // object, maybe empty).
  virtual void round_aggregated(const GlobalModel& model, const std::filesystem::path& saved_to,
                                const nlohmann::json& aggregator_figures) = 0;
  virtual void final_evaluation_started() = 0;
  // Every site measured global model figures.model_round (saved as `model_file`).
  virtual void model_measured(const RoundFigures& figures,
                              const std::filesystem::path& model_file) = 0;
  // The first global figures lack server.key_metric: no model will be "best"
  // (best.safetensors is never written). `reported` names the figures there are.
  virtual void key_metric_missing(const std::string& key_metric,
                                  const std::vector<std::string>& reported) = 0;
  virtual void site_progress(const SiteProgress& progress) = 0;
  // A batch of a site's per-step figures (host->report_metric), checked.
  virtual void site_metrics(const SiteMetrics& metrics) = 0;
  virtual void rank_failed(const RankFailure& failure, FailureHandling handling) = 0;
  // A site's policy refused the job; followed by job_failed.
  virtual void site_refused(const SiteRefusal& refusal) = 0;
  // Followed by job_failed.
  virtual void aggregator_failed(const AggregatorFailure& failure) = 0;
  virtual void job_failed(const std::string& reason) = 0;
  virtual void job_finished() = 0;
};

}  // namespace flare::server
