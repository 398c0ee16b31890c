// The federated job's round state machine on the server: registration, the
// initial model, rounds of train -> aggregate (each update folded in as it
// arrives) over a seeded sample of the sites, closed at min_clients results
// and the round's deadline, the final evaluation, the best model, a
// checkpoint per round, timeouts, sites dropped (silent, gone, failed) and
// rejoining, and failures.
// It speaks domain types (server/domain.hpp), never the wire: the RPC edge
// converts. What the outside sees goes out as JobEvents. RPC threads call the
// site-facing methods; the main thread calls run().
#pragma once

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "checkpoint/round_checkpoint.hpp"
#include "plugin_host/plugin_instances.hpp"
#include "server/aggregator_figures.hpp"
#include "server/domain.hpp"
#include "server/evaluation_board.hpp"
#include "server/global_model.hpp"
#include "server/job_events.hpp"
#include "server/model_store.hpp"
#include "server/round_sampler.hpp"
#include "server/site_liveness.hpp"
#include "server/update_intake.hpp"
#include "server/worker_generations.hpp"

namespace flare::server {

struct ControllerSettings {
  std::vector<std::string> sites;  // every site expected to register
  int num_rounds = 1;
  std::string key_metric = "val_acc";
  KeyMetricMode key_metric_mode = KeyMetricMode::Auto;
  std::chrono::milliseconds round_timeout{3600 * 1000};
  std::chrono::milliseconds start_timeout{300 * 1000};
  // Where updates in flight are spooled (unlinked files): the run's folder.
  std::filesystem::path spool_dir = std::filesystem::temp_directory_path();
  // A round closes with at least min_clients results: when all the sampled
  // sites answered, or at round_timeout with those in. 0: every site.
  int min_clients = 0;
  int clients_per_round = 0;  // sites sampled per round (0: all)
  uint64_t seed = 0;          // the sampling RNG's
  // A site silent this long (no heartbeat, no request) is dropped.
  std::chrono::milliseconds heartbeat_timeout{60 * 1000};
  // Round checkpoints (checkpoint/round_checkpoint.hpp); empty: none written.
  std::filesystem::path checkpoint_dir;
  int keep_checkpoints = 2;
  std::string job_fingerprint;  // what a checkpoint must carry to be resumed from
};

// What the controller drives and tells; all owned by the caller.
struct ControllerOutputs {
  host::AggregatorInstance& aggregator;
  ModelStore& models;
  JobEvents& events;
  // The aggregator's side of the host services (release_pages, report_metric):
  // what it keeps and what it reports in a round.
  KeptUpdates& kept_updates;
  AggregatorFigures& aggregator_figures;
};

struct JobOutcome {
  bool success = false;
  std::string failure;  // why, when it failed
};

class Controller {
 public:
  Controller(ControllerSettings settings, ControllerOutputs outputs);

  // Site-facing (any thread). Each checks everything about a request before
  // it has any effect, and refuses it (RejectedRequest; InvalidRequest when
  // it is malformed) or applies it entirely; also refused is every request of
  // a worker-group generation that is not the site's current one. Once a
  // request passed its checks, a failure to apply it is the server's (a full
  // disk, an aggregator's error): the job fails, naming it.
  // Hands the registering group its generation (WorkerGenerations).
  Registration register_site(const SiteJoin& join);
  // The site's next task, waiting up to `max_wait` for one (then Wait).
  // Every site's Train or Evaluate task of a round shares one GlobalModel.
  Task next_task(const std::string& site, int64_t generation, std::chrono::milliseconds max_wait);
  void accept_initial_model(InitialModel model);
  // An update streams in three steps: its header is checked against the
  // round and opens an intake (refused here, before any tensor is read), its
  // tensors go into the intake (checked and folded as they come: see
  // UpdateIntake), and commit_update counts it, checking the round again (the
  // site's group may have been restarted meanwhile). An intake dropped
  // uncommitted takes the update back.
  std::unique_ptr<UpdateIntake> open_update(SiteUpdate header);
  void commit_update(UpdateIntake& intake);
  // The three steps at once, for an update whose tensors are in `update`.
  void accept_update(const SiteUpdate& update);
  void accept_evaluation(const SiteEvaluation& evaluation);
  void progress(const SiteProgress& progress);
  // A site's per-step figures; refused once the job ended (JobEnded), so the
  // job's last line stays last.
  void site_metrics(const SiteMetrics& metrics);
  // A node's supervisor reports a failed rank. Every node of a multi-node
  // group reports each failure of it; the first report of a generation
  // decides (restart or fail), the later ones are only logged.
  void failure(const RankFailure& failure);
  // A site's policy refuses the job (before its workers started): the job
  // fails, naming the site and its reason. Refused once the job is over.
  void site_refused(const SiteRefusal& refusal);
  // A site's rank 0 is alive (its heartbeat). RegisterAgain when the site was
  // dropped (or never registered with this server).
  void heartbeat(const std::string& site, int64_t generation);

  // Main thread. A site's processes ended (flare-run saw its client exit):
  // it is dropped as a silent one would be, and the job goes on while
  // min_clients sites can still answer.
  void site_lost(const std::string& site, const std::string& reason);

  // Before the sites register: the job goes on after `checkpoint`'s round,
  // with its global model, the aggregator's state, the best figures and the
  // sampling RNG (`file`: where it was read; `refused`: newer ones skipped).
  void resume_from(checkpoint::RoundCheckpoint checkpoint, const std::filesystem::path& file,
                   const std::vector<std::string>& refused);

  // Main thread. Fails the job with `reason` (or a site's pending report of a
  // failed collective) unless it already ended.
  void abort(const std::string& reason);
  // Any thread: the server itself failed (a model it cannot write); the job
  // fails with `reason`, blaming no site.
  void server_failed(const std::string& reason);
  // Any thread: the aggregator failed a call (folding a checked update, or
  // taking one back); the job fails, blamed on it.
  void aggregator_failed(const host::PluginCallError& error);
  // Blocks until the job ends; calls `watch` about every 200 ms (it may abort).
  JobOutcome run(const std::function<void()>& watch);
  // The figures of every global model made so far, in round order.
  std::vector<RoundFigures> figures() const;

 private:
  enum class Phase { Registering, InitialModel, Training, FinalEvaluation, Finished, Failed };

  bool has_task_locked(const std::string& site) const;
  Task make_task_locked(const std::string& site);
  // Every site registered (or, at start_timeout, min_clients of them): the
  // initial model is asked for, or a resumed job's next round starts.
  void begin_job_locked();
  void begin_when_all_registered_locked();
  // The sites in the job (registered, not dropped), in the job's order.
  std::vector<std::string> sites_in_job_locked() const;
  size_t min_clients() const;
  // The server gives up on `site` (silent, gone, failed for good, refused):
  // it leaves the job and its unanswered task; it may register again.
  void drop_site_locked(const std::string& site, const std::string& reason);
  // Closes the round (or the final evaluation) once min_clients answered and
  // every sampled site did or the deadline passed; fails the job once
  // min_clients can no longer answer, or at the deadline without them.
  void settle_round_locked(bool deadline_passed);
  std::string sites_gone_locked() const;  // "site-2 (why); site-3 (why)"
  void start_final_evaluation_locked();
  // The figures of global model `model_round` from the sites that measured it.
  void close_figures_locked(int64_t model_round);
  // The round checkpoint of `model_round`; false when it failed (the job then failed).
  bool write_checkpoint_locked(int64_t model_round);
  // Throws LateResult or RejectedRequest unless `site`'s result for `round`
  // fits the round under way (what `what` is: "update", "evaluation").
  void check_result_fits_locked(const std::string& site, int64_t round, const char* what);
  // Runs `apply` (what a checked request does); a failure in it fails the job.
  template <class Apply>
  void apply_locked(const std::string& request, Apply&& apply);
  void start_round_locked(int64_t round);
  void complete_round_locked();
  // Writes the aggregator's state beside the round's model (when it has
  // state); false when the aggregator failed (the job then fails).
  bool save_aggregator_state_locked(int64_t model_round);
  void record_evaluation_locked(int64_t model_round, const std::string& site,
                                const nlohmann::json& evaluation);
  void fail_locked(const std::string& reason);
  // The site's worker group restarts as a new generation, which voids its
  // unanswered task: it is handed out again.
  void restart_group_locked(const std::string& site);
  // begin_round or finalize failed: the job fails, blamed on the aggregator.
  void aggregator_failed_locked(const host::PluginCallError& error);
  // Throws JobEnded once the job finished or failed.
  void require_running_locked() const;
  void check_deadlines_locked();

  ControllerSettings settings_;
  ControllerOutputs out_;
  // Every call into the aggregator goes through it (its own lock: uploads
  // fold chunks without the controller's).
  SharedAggregator aggregator_;
  EvaluationBoard board_;
  bool key_metric_checked_ = false;  // against the first figures
  WorkerGenerations generations_;  // own lock: progress reports check it without mutex_
  SiteLiveness liveness_;          // own lock: heartbeats never wait for mutex_
  RoundSampler sampler_;

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  Phase phase_ = Phase::Registering;
  std::string failure_;
  std::set<std::string> ever_registered_;  // a second registration is a rejoin
  std::set<std::string> in_job_;           // registered and not dropped
  std::map<std::string, std::string> gone_;  // dropped sites not back, and why
  std::string initial_site_;               // asked for the initial model
  std::set<std::string> sampled_;    // sites asked to answer this phase
  std::set<std::string> assigned_;   // sites handed this phase's task
  std::set<std::string> responded_;  // sites whose answer arrived
  std::map<std::string, std::string> left_round_;  // sampled, dropped before answering: why
  // (site, round) of every round closed without the site's result.
  std::set<std::pair<std::string, int64_t>> stragglers_;
  std::optional<int64_t> resumed_round_;  // the checkpoint's round, once resumed
  // A failure inside a collective waits briefly for its likely cause (a peer
  // on another node) to be reported; then it drops the site itself.
  std::optional<std::string> consequence_;
  std::string consequence_site_;
  std::chrono::steady_clock::time_point consequence_at_;
  int64_t round_ = 0;     // the training round under way (0-based)
  GlobalModelPtr global_;  // the model this round's tasks carry
  // Models whose figures are still to come (sites measure a model when they
  // receive it): the same objects the tasks carried, kept for best.safetensors.
  std::map<int64_t, GlobalModelPtr> awaiting_evaluation_;
  std::map<int64_t, RoundFigures> figures_;
  std::chrono::steady_clock::time_point phase_started_;
  std::chrono::steady_clock::time_point last_check_ = std::chrono::steady_clock::now();  // of deadlines
  double round_images_ = 0;
  double round_train_seconds_ = 0;  // the slowest site's (sites train concurrently)
};

}  // namespace flare::server
