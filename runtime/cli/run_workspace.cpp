#include "cli/run_workspace.hpp"

#include <system_error>

#include "report/report_page.hpp"

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
  ws.make_layout();
  jobspec::export_job(job, root);  // writes root/job.toml
  const fs::path latest = job.workspace / "latest";
  std::error_code ec;
  fs::remove(latest, ec);
  fs::create_directory_symlink(root.filename(), latest, ec);  // a convenience only
  return ws;
}

RunWorkspace RunWorkspace::in_folder(const fs::path& root) {
  RunWorkspace ws(root);
  ws.make_layout();
  return ws;
}

void RunWorkspace::make_layout() const {
  fs::create_directories(models_dir());
  fs::create_directories(logs_dir());
  fs::create_directories(sites_dir());
}

server::ServerFiles server_files(const RunWorkspace& ws, const jobspec::JobSpec& job) {
  return {.models_dir = ws.models_dir(),
          .metrics_file = ws.metrics_file(),
          .log_file = ws.logs_dir() / "server.log",
          .tensorboard_dir = job.use_tracking ? ws.tensorboard_dir() : fs::path(),
          .audit_file = ws.audit_file(),
          .checkpoint_dir = ws.checkpoint_dir()};
}

std::string write_report(const RunWorkspace& ws) {
  try {
    return "report: " + report::write_run_report(ws.root()).string();
  } catch (const std::exception& e) {
    return "report: not written: " + std::string(e.what());
  }
}

}  // namespace flare::cli
