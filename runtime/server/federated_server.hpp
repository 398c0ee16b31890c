// The federated server of one job, wired: the aggregator plugin, the model
// store, the metrics log, the reporter, the controller and the gRPC service,
// listening from construction. flare-run starts one in its own process; a
// stand-alone flare-server starts the same object.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "jobspec/job_spec.hpp"
#include "plugin_host/crash_report.hpp"
#include "plugin_host/host_services.hpp"
#include "plugin_host/plugin_instances.hpp"
#include "plugin_host/plugin_loader.hpp"
#include "server/controller.hpp"
#include "server/model_store.hpp"
#include "server/progress_display.hpp"
#include "server/rpc_service.hpp"
#include "server/job_events_tee.hpp"
#include "server/run_reporter.hpp"
#include "server/tensorboard_reporter.hpp"
#include "storage/metrics_log.hpp"

namespace flare::server {

// The server's part of a run's workspace.
struct ServerFiles {
  std::filesystem::path models_dir;    // global_round_<k>.safetensors, best.safetensors
  std::filesystem::path metrics_file;  // metrics.jsonl
  std::filesystem::path log_file;      // the server's log
  // TensorBoard event files (job.use_tracking); empty: none written.
  std::filesystem::path tensorboard_dir;
  // The audit trail (audit_log.hpp); empty: none written.
  std::filesystem::path audit_file;
  // Round checkpoints (checkpoint/round_checkpoint.hpp); empty: none written.
  std::filesystem::path checkpoint_dir;
};

// Loads the job's aggregator plugin; throws host::PluginLoadError. Separate
// from the server so a program can check its input before it creates files.
host::LoadedPlugin load_aggregator(const jobspec::JobSpec& job);

// flare-run --resume (or a restarted server) found no checkpoint to go on from.
class NothingToResume : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class FederatedServer {
 public:
  // Listens on job.server_host:job.server_port (port 0: a free one) at once,
  // with mutual TLS when `tls` is set (every request then checked against
  // its caller's certificate). `display` (the program's terminal) is
  // borrowed and must outlive the server. With `resume`, the job goes on
  // after the newest good checkpoint in files.checkpoint_dir (NothingToResume
  // when there is none).
  FederatedServer(const jobspec::JobSpec& job, const host::LoadedPlugin& aggregator,
                  const ServerFiles& files, ProgressDisplay& display,
                  const std::optional<ServerTls>& tls = std::nullopt, bool resume = false);
  FederatedServer(const FederatedServer&) = delete;
  FederatedServer& operator=(const FederatedServer&) = delete;

  // host:port, for the sites.
  std::string address() const { return rpc_.address(); }
  // Blocks until the job ends; calls `watch` about every 200 ms (it may abort).
  JobOutcome run(const std::function<void()>& watch) { return controller_.run(watch); }
  // Fails the job with `reason` unless it already ended (any thread).
  void abort(const std::string& reason) { controller_.abort(reason); }
  // The figures of every global model made so far, in round order.
  std::vector<RoundFigures> figures() const { return controller_.figures(); }
  // Main thread: a site's processes ended; the job goes on without it while
  // min_clients sites can still answer (Controller::site_lost).
  void site_lost(const std::string& site, const std::string& reason) {
    controller_.site_lost(site, reason);
  }
  // The server's log (logs/server.log), for what its host program adds.
  spdlog::logger& log() { return *log_; }

 private:
  std::shared_ptr<spdlog::logger> log_;
  host::CrashReportFile crash_reports_;  // a crash in the aggregator is told in the log too
  KeptUpdates kept_updates_;             // behind the aggregator's release_pages
  AggregatorFigures aggregator_figures_;  // behind its report_metric
  host::HostServices services_;
  host::AggregatorInstance aggregator_;
  ModelStore models_;
  storage::MetricsLog metrics_;
  RunReporter reporter_;
  std::unique_ptr<TensorBoardReporter> tensorboard_;  // with tracking only
  JobEventsTee events_;  // the reporter, then TensorBoard
  Controller controller_;
  // Restored before the server listens: no site registers with a job that
  // has not yet taken its checkpoint.
  bool resumed_ = false;
  std::unique_ptr<AuditLog> audit_;  // with files.audit_file only
  RpcService service_;
  RpcServer rpc_;  // last: it stops serving before anything it calls is destroyed
};

}  // namespace flare::server
