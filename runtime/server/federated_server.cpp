#include "server/federated_server.hpp"

#include "checkpoint/round_checkpoint.hpp"
#include "common/logging.hpp"
#include "common/sha256.hpp"
#include "transport/model_stream.hpp"

namespace flare::server {

namespace {

// The aggregator's log lines go to the server log, its figures to the
// round's, the pages it has read of kept updates back to the kernel.
host::HostCallbacks aggregator_callbacks(std::shared_ptr<spdlog::logger> log, KeptUpdates& kept,
                                         AggregatorFigures& figures) {
  host::HostCallbacks callbacks;
  callbacks.metric = [&figures](std::string_view name, double value, int64_t round) {
    figures.report(name, value, round);
  };
  callbacks.release_pages = [&kept](const void* data, size_t bytes) {
    kept.release_pages(data, bytes);
  };
  callbacks.log = [log](flare_log_level level, std::string_view message) {
    log->log(level == FLARE_LOG_ERROR ? spdlog::level::err
             : level == FLARE_LOG_WARN ? spdlog::level::warn
             : level == FLARE_LOG_DEBUG ? spdlog::level::debug
                                        : spdlog::level::info,
             "aggregator: {}", message);
  };
  return callbacks;
}

// What a checkpoint must match to be resumed from: what decides the model's
// path (sites, seed, plugins and their configs, data, sampling). Timeouts,
// ports and the number of rounds may change between a run and its resume.
std::string checkpoint_fingerprint(const jobspec::JobSpec& job) {
  nlohmann::json sites = nlohmann::json::array();
  for (const auto& s : job.sites) sites.push_back(s.name);
  const auto plugin = [](const jobspec::PluginRef& p) {
    return nlohmann::json{{"name", p.name}, {"path", p.path.string()}, {"config", p.config}};
  };
  const nlohmann::json identity = {{"name", job.name},
                                   {"seed", job.seed},
                                   {"sites", sites},
                                   {"trainer", plugin(job.trainer)},
                                   {"aggregator", plugin(job.aggregator)},
                                   {"data", jobspec::data_table(job)},
                                   {"min_clients", job.min_clients},
                                   {"sampled_per_round", jobspec::sampled_per_round(job)}};
  common::Sha256 sha;
  sha.update(identity.dump());
  return common::to_hex(sha.finish());
}

// The newest good checkpoint, handed to the controller; each newer one
// refused is said with its reason.
void resume_controller(Controller& controller, const jobspec::JobSpec& job,
                       const ServerFiles& files, spdlog::logger& log) {
  auto latest = checkpoint::load_latest_checkpoint(files.checkpoint_dir, checkpoint_fingerprint(job));
  std::vector<std::string> refused;
  for (const auto& r : latest.refusals) {
    refused.push_back(r.file.filename().string() + ": " + r.reason);
    log.warn("checkpoint {} refused: {}", r.file.string(), r.reason);
  }
  if (!latest.checkpoint) {
    std::string why = "nothing to resume in " + files.checkpoint_dir.parent_path().string() +
                      ": no checkpoint in " + files.checkpoint_dir.string();
    for (const auto& r : refused) why += "\n  refused: " + r;
    throw NothingToResume(why);
  }
  controller.resume_from(std::move(*latest.checkpoint), latest.file, refused);
}

ControllerSettings controller_settings(const jobspec::JobSpec& job, const ServerFiles& files) {
  ControllerSettings settings;
  // On the run's disk, not in /tmp, which may be memory (tmpfs).
  settings.spool_dir = files.metrics_file.parent_path();
  for (const auto& s : job.sites) settings.sites.push_back(s.name);
  settings.num_rounds = job.num_rounds;
  settings.key_metric = job.key_metric;
  settings.key_metric_mode = key_metric_mode_named(job.key_metric_mode);
  settings.round_timeout =
      std::chrono::milliseconds(static_cast<int64_t>(job.round_timeout_s * 1000));
  settings.start_timeout =
      std::chrono::milliseconds(static_cast<int64_t>(job.worker_start_timeout_s * 1000));
  settings.min_clients = job.min_clients;
  settings.clients_per_round = jobspec::sampled_per_round(job);
  settings.seed = job.seed;
  settings.heartbeat_timeout =
      std::chrono::milliseconds(static_cast<int64_t>(job.heartbeat_timeout_s * 1000));
  settings.checkpoint_dir = files.checkpoint_dir;
  settings.keep_checkpoints = static_cast<int>(job.keep_checkpoints);
  settings.job_fingerprint = checkpoint_fingerprint(job);
  return settings;
}

}  // namespace

host::LoadedPlugin load_aggregator(const jobspec::JobSpec& job) {
  return host::load_plugin(
      {job.aggregator.name, job.aggregator.path, job.plugin_path, job.aggregator.version},
      FLARE_PLUGIN_AGGREGATOR);
}

FederatedServer::FederatedServer(const jobspec::JobSpec& job,
                                 const host::LoadedPlugin& aggregator, const ServerFiles& files,
                                 ProgressDisplay& display, const std::optional<ServerTls>& tls,
                                 bool resume)
    : log_(common::make_file_logger("server", files.log_file)),
      crash_reports_(files.log_file),
      services_(aggregator_callbacks(log_, kept_updates_, aggregator_figures_), nullptr),
      aggregator_(aggregator, job.aggregator.config.dump(), services_),
      models_(files.models_dir, {.every = job.save_every,
                                 .keep_last = job.keep_last,
                                 .final_round = job.num_rounds}),
      metrics_(files.metrics_file),
      reporter_(metrics_, display, log_, job.num_rounds),
      tensorboard_(files.tensorboard_dir.empty() ? nullptr
                                                 : std::make_unique<TensorBoardReporter>(
                                                       files.tensorboard_dir, display, log_)),
      events_(tensorboard_ ? JobEventsTee{&reporter_, tensorboard_.get()}
                           : JobEventsTee{&reporter_}),
      controller_(controller_settings(job, files),
                  {aggregator_, models_, events_, kept_updates_, aggregator_figures_}),
      resumed_(resume && (resume_controller(controller_, job, files, *log_), true)),
      audit_(files.audit_file.empty() ? nullptr : std::make_unique<AuditLog>(files.audit_file)),
      service_(controller_, log_, transport::wire_encoding_for(job.wire_dtype),
               {.require_identity = tls.has_value(), .audit = audit_.get()}),
      rpc_(service_, job.server_host, job.server_port, server_credentials(tls, audit_.get())) {
  log_->info("listening on {} ({})", rpc_.address(),
             tls ? "mutual TLS: each site known by its certificate" : "plaintext");
}

}  // namespace flare::server
