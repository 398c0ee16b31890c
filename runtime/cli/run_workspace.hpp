// One folder per run under the job's workspace: <workspace>/run-<N>, with a
// `latest` link to the newest. Earlier runs are never touched. The
// long-running server lays out each job's folder the same way.
#pragma once

#include <filesystem>
#include <string>

#include "jobspec/job_spec.hpp"
#include "server/federated_server.hpp"

namespace flare::cli {

class RunWorkspace {
 public:
  // Creates the next run folder, its layout, and job.toml (the resolved job).
  static RunWorkspace create(const jobspec::JobSpec& job);
  // The layout inside `root`, which exists and holds job.toml (a
  // long-running server's job folder, or a run folder flare-run resumes).
  static RunWorkspace in_folder(const std::filesystem::path& root);

  const std::filesystem::path& root() const { return root_; }
  std::filesystem::path job_file() const { return root_ / "job.toml"; }
  std::filesystem::path models_dir() const { return root_ / "models"; }
  std::filesystem::path logs_dir() const { return root_ / "logs"; }
  std::filesystem::path sites_dir() const { return root_ / "sites"; }
  std::filesystem::path metrics_file() const { return root_ / "metrics.jsonl"; }
  // TensorBoard event files, one folder per site and "global" (job.use_tracking).
  std::filesystem::path tensorboard_dir() const { return root_ / "tensorboard"; }
  // The run's CA and certificates, a folder per site (run_identities.hpp).
  std::filesystem::path tls_dir() const { return root_ / "tls"; }
  // Round checkpoints, what --resume goes on from (checkpoint/round_checkpoint.hpp).
  std::filesystem::path checkpoint_dir() const { return root_ / "checkpoints"; }
  // The server's audit trail (server/audit_log.hpp).
  std::filesystem::path audit_file() const { return logs_dir() / "audit.jsonl"; }

 private:
  void make_layout() const;
  explicit RunWorkspace(std::filesystem::path root) : root_(std::move(root)) {}
  std::filesystem::path root_;
};

// The server's files in `ws` for `job` (TensorBoard only with tracking).
server::ServerFiles server_files(const RunWorkspace& ws, const jobspec::JobSpec& job);

// Writes the run's report.html: "report: <file>", or why it was not written
// (the job's outcome never hangs on it).
std::string write_report(const RunWorkspace& ws);

}  // namespace flare::cli
