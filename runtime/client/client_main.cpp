// flare-client: one site. Starts the site's worker group (one flare-worker per
// device), watches it, and reports a failed rank to the server with its cause.
#include <atomic>
#include <csignal>
#include <algorithm>
#include <iostream>
#include <thread>

#include <boost/program_options.hpp>

#include "client/worker_group.hpp"
#include "common/local_host.hpp"
#include "common/logging.hpp"
#include "jobspec/job_spec.hpp"
#include "transport/server_connection.hpp"

namespace po = boost::program_options;

namespace {

std::atomic<bool> g_stop{false};

void request_stop(int) { g_stop = true; }

struct ClientArgs {
  std::string job, site, server, log_dir, work_dir;
  int threads = 0;
};

ClientArgs parse(int argc, char** argv) {
  ClientArgs a;
  po::options_description desc("flare-client");
  desc.add_options()
    ("job", po::value(&a.job)->required(), "resolved job spec (TOML)")
    ("site", po::value(&a.site)->required(), "this site's name")
    ("server", po::value(&a.server)->required(), "server address host:port")
    ("log-dir", po::value(&a.log_dir)->required(), "folder for the ranks' logs")
    ("work-dir", po::value(&a.work_dir)->required(), "folder for the ranks' files")
    ("threads", po::value(&a.threads), "intra-op threads per rank (0 = cores / ranks)");
  po::variables_map vm;
  po::store(po::parse_command_line(argc, argv, desc), vm);
  po::notify(vm);
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  flare::common::exit_when_parent_dies();
  ClientArgs args;
  try {
    args = parse(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "flare-client: " << e.what() << "\n";
    return 2;
  }
  std::signal(SIGTERM, request_stop);
  std::signal(SIGINT, request_stop);
  auto log = flare::common::make_logger("client", args.site);
  try {
    const auto job = flare::jobspec::load_job(args.job);
    int site_index = -1, devices = 0;
    for (size_t i = 0; i < job.sites.size(); ++i) {
      if (job.sites[i].name == args.site) {
        site_index = static_cast<int>(i);
        devices = job.sites[i].devices;
      }
    }
    if (site_index < 0) throw std::runtime_error("site '" + args.site + "' is not in " + args.job);

    flare::client::GroupLaunch launch;
    launch.worker_program = flare::common::executable_dir() / "flare-worker";
    launch.job_file = args.job;
    launch.site = args.site;
    launch.site_index = site_index;
    launch.num_sites = static_cast<int>(job.sites.size());
    launch.devices = devices;
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    launch.threads_per_rank = args.threads > 0 ? args.threads : std::max(1, cores / devices);
    launch.server = args.server;
    launch.log_dir = args.log_dir;
    launch.work_dir = args.work_dir;
    log->info("starting {} worker ranks ({} threads each)", devices, launch.threads_per_rank);
    flare::client::WorkerGroup group(launch);
    const auto failure = group.supervise(g_stop);
    if (!failure) {
      log->info(g_stop ? "stopped on request" : "all ranks finished");
      return 0;
    }
    log->error("rank {} failed: {}; the group was stopped", failure->rank, failure->cause);
    try {
      flare::transport::ServerConnection server(args.server, args.site);
      flare::transport::v1::Failure report;
      report.set_rank(failure->rank);
      report.set_cause(failure->cause);
      report.set_log_tail(failure->log_tail);
      server.report_failure(report);
    } catch (const std::exception& e) {
      log->error("could not report the failure to the server: {}", e.what());
    }
    return 1;
  } catch (const std::exception& e) {
    log->error("{}", e.what());
    return 1;
  }
}
