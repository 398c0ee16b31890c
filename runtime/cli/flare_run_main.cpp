// flare-run JOB.toml: runs a federated job on this machine (flare-run --resume
// RUN_DIR: goes on with a killed one after its last checkpoint). Every error is
// one clear message and an exit code: 2 for bad input, 1 for a failed run.
#include <csignal>
#include <iostream>

#include <malloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/input_checks.hpp"
#include "cli/local_job.hpp"
#include "cli/run_options.hpp"
#include "common/process_exit.hpp"
#include "jobspec/job_spec.hpp"
#include "plugin_host/crash_report.hpp"
#include "plugin_host/plugin_loader.hpp"
#include "devices/device_plan.hpp"

#ifndef FLARE_VERSION
#define FLARE_VERSION "unknown"
#endif

namespace {

int run(int argc, char** argv) {
  using namespace flare;
  // A site that vanished mid-call must not kill the server with SIGPIPE.
  std::signal(SIGPIPE, SIG_IGN);
  // A crash in the aggregator (or the trainer's check) says so before the end.
  host::install_plugin_crash_reports("flare-run");
  try {
    const auto options = cli::parse_run_options(argc, argv);
    if (options.show_help) {
      std::cout << options.help_text;
      return cli::kExitSuccess;
    }
    if (options.show_version) {
      std::cout << "flare-run " << FLARE_VERSION << " (plugin ABI " << FLARE_ABI_VERSION_MAJOR
                << "." << FLARE_ABI_VERSION_MINOR << ")\n";
      return cli::kExitSuccess;
    }
    if (options.resume_dir) {
      const auto point = cli::find_resume_point(*options.resume_dir);
      if (point.finished_rounds) {
        std::cout << "flare-run: " << point.run_dir.string() << " already finished ("
                  << *point.finished_rounds << " rounds): nothing to resume\n";
        return cli::kExitSuccess;
      }
      return cli::run_local_job(point.job, std::cout, ::isatty(STDOUT_FILENO) != 0,
                                options.site_policies, &point);
    }
    const auto job = jobspec::load_job(options.job_file, cli::to_overrides(options));
    if (options.export_config) {
      jobspec::export_job(job, *options.export_config);
      std::cout << "wrote " << (*options.export_config / "job.toml").string() << "\n";
      return cli::kExitSuccess;
    }
    return cli::run_local_job(job, std::cout, ::isatty(STDOUT_FILENO) != 0,
                              options.site_policies);
  } catch (const cli::UsageError& e) {
    std::cerr << "flare-run: " << e.what() << "\nTry 'flare-run --help'.\n";
    return cli::kExitBadInput;
  } catch (const jobspec::JobSpecError& e) {
    std::cerr << "flare-run: invalid job spec: " << e.what() << "\n";
    return cli::kExitBadInput;
  } catch (const cli::InputError& e) {
    std::cerr << "flare-run: " << e.what() << "\n";
    return cli::kExitBadInput;
  } catch (const devices::DevicePlanError& e) {
    std::cerr << "flare-run: this machine cannot run the job's worker groups: " << e.what() << "\n";
    return cli::kExitBadInput;
  } catch (const host::PluginLoadError& e) {
    std::cerr << "flare-run: " << e.what() << "\n";
    return cli::kExitBadInput;
  } catch (const std::exception& e) {
    std::cerr << "flare-run: " << e.what() << "\n";
    return cli::kExitRunFailure;
  }
}

}  // namespace

int main(int argc, char** argv) {
  // The server's gRPC threads each receive and send 4 MiB model parts; with
  // glibc's default of 8 arenas per core each thread keeps its own freed
  // parts, which grew the server by about 100 MiB per site at 8 sites (a
  // 477 MiB model: 3.1-3.7x the model, 2.5x with two arenas, no slower).
  mallopt(M_ARENA_MAX, 2);
  // The run's models, logs and keys are its owner's alone (the sites inherit it).
  umask(077);
  // The trainer plugin's check loaded LibTorch into this process; its static
  // destructors would add 0.1 s to every run.
  flare::common::exit_skipping_static_destructors(run(argc, argv));
}
