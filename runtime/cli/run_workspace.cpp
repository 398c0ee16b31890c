#include "cli/run_workspace.hpp"

#include <system_error>

namespace flare::cli {

namespace fs = std::filesystem;

RunWorkspace RunWorkspace::create(const jobspec::JobSpec& job) {
  fs::create_directories(job.workspace);
  // create_directory fails on an existing folder, so two runs starting at
  // once cannot share a number.
  fs::path root;
  for (int n = 1;; ++n) {
    root = job.workspace / ("run-" + std::to_string(n));
    std::error_code ec;
    if (fs::create_directory(root, ec)) break;
    if (ec) throw fs::filesystem_error("cannot create the run folder", root, ec);
  }
  // Models, logs and keys of the run are its owner's alone.
  fs::permissions(root, fs::perms::owner_all);
  RunWorkspace ws(root);
  fs::create_directories(ws.models_dir());
  fs::create_directories(ws.logs_dir());
  fs::create_directories(ws.sites_dir());
  jobspec::export_job(job, root);  // writes root/job.toml
  const fs::path latest = job.workspace / "latest";
  std::error_code ec;
  fs::remove(latest, ec);
  fs::create_directory_symlink(root.filename(), latest, ec);  // a convenience only
  return ws;
}

}  // namespace flare::cli
