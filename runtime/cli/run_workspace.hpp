// One folder per run under the job's workspace: <workspace>/run-<N>, with a
// `latest` link to the newest. Earlier runs are never touched.
#pragma once

#include <filesystem>

#include "jobspec/job_spec.hpp"

namespace flare::cli {

class RunWorkspace {
 public:
  // Creates the next run folder, its layout, and job.toml (the resolved job).
  static RunWorkspace create(const jobspec::JobSpec& job);

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
  // The server's audit trail (server/audit_log.hpp).
  std::filesystem::path audit_file() const { return logs_dir() / "audit.jsonl"; }

 private:
  explicit RunWorkspace(std::filesystem::path root) : root_(std::move(root)) {}
  std::filesystem::path root_;
};

}  // namespace flare::cli
