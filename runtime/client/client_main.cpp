// flare-client: one site (or, for a multi-node site, one node of it). Checks
// the job against the site's policy (--policy; a refusal goes to the server
// and nothing starts), starts the node's worker ranks (one flare-worker per
// device), watches them, reports a failed or hung rank to the server, and
// restarts the group while the job's restart policy allows. With --startup
// DIR it is instead the site's long-running daemon (site_daemon/), which
// starts this per-job mode for each job the server offers.
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <iostream>
#include <thread>

#include <boost/program_options.hpp>

#include "client/server_delivery.hpp"
#include "client/site_admission.hpp"
#include "client/worker_group.hpp"
#include "devices/device_plan.hpp"
#include "common/local_host.hpp"
#include "common/logging.hpp"
#include "common/lookup_order.hpp"
#include "jobspec/job_spec.hpp"
#include "site_daemon/site_daemon.hpp"
#include "transport/server_connection.hpp"
#include "transport/tls_settings.hpp"

namespace po = boost::program_options;

namespace {

std::atomic<bool> g_stop{false};

void request_stop(int) { g_stop = true; }

struct ClientArgs {
  std::string job, site, server, log_dir, work_dir, tls_dir;
  std::string policy;  // this site's policy file; empty: it runs what the job names
  int threads = 0;
  std::string device_inventory;  // JSON from flare-run; empty: devices::local_devices
  // torchrun-style; unset: the job spec's values for this site.
  std::optional<int> nnodes, node_rank, master_port;
  std::optional<std::string> master_addr;
};

ClientArgs parse(int argc, char** argv) {
  ClientArgs a;
  int nnodes = 0, node_rank = 0, master_port = 0;
  std::string master_addr;
  po::options_description desc("flare-client");
  desc.add_options()
    ("policy", po::value(&a.policy), "this site's policy file (TOML): which plugins and devices "
     "a job may use here")
    ("job", po::value(&a.job)->required(), "resolved job spec (TOML)")
    ("site", po::value(&a.site)->required(), "this site's name")
    ("server", po::value(&a.server)->required(), "server address host:port")
    ("tls-dir", po::value(&a.tls_dir),
     "this site's ca.crt, participant.crt and participant.key (a startup folder): mutual TLS with the server (none: plaintext)")
    ("log-dir", po::value(&a.log_dir)->required(), "folder for the ranks' logs")
    ("work-dir", po::value(&a.work_dir)->required(), "folder for the ranks' files")
    ("threads", po::value(&a.threads), "intra-op threads per rank (0 = cores / ranks)")
    ("device-inventory", po::value(&a.device_inventory),
     "this machine's devices as flare-worker --probe-devices reported them (skips the probe)")
    ("nnodes", po::value(&nnodes), "nodes the site's worker group spans")
    ("node-rank", po::value(&node_rank), "this node's rank (0 hosts global rank 0)")
    ("master-addr", po::value(&master_addr), "rendezvous host (node 0)")
    ("master-port", po::value(&master_port), "rendezvous port");
  po::variables_map vm;
  po::store(po::parse_command_line(argc, argv, desc), vm);
  po::notify(vm);
  if (vm.count("nnodes")) a.nnodes = nnodes;
  if (vm.count("node-rank")) a.node_rank = node_rank;
  if (vm.count("master-addr")) a.master_addr = master_addr;
  if (vm.count("master-port")) a.master_port = master_port;
  return a;
}

flare::client::GroupLaunch plan_launch(const ClientArgs& args,
                                       const flare::jobspec::JobSpec& job) {
  const auto site = std::find_if(job.sites.begin(), job.sites.end(),
                                 [&](const auto& s) { return s.name == args.site; });
  if (site == job.sites.end())
    throw std::runtime_error("site '" + args.site + "' is not in " + args.job);
  flare::client::GroupLaunch launch;
  launch.worker_program = flare::common::executable_dir() / "flare-worker";
  launch.job_file = args.job;
  launch.site = args.site;
  launch.site_index = static_cast<int>(site - job.sites.begin());
  launch.num_sites = static_cast<int>(job.sites.size());
  // Devices are resolved here, on the node that runs them.
  const auto devices =
      args.device_inventory.empty()
          ? flare::devices::local_devices(launch.worker_program)
          : flare::devices::inventory_from_json(nlohmann::json::parse(args.device_inventory));
  const auto plan = flare::devices::plan_devices(*site, devices);
  if (plan.accelerator == "cpu")
    flare::devices::check_cpu_ranks_fit(job, plan.ranks_per_node, devices);
  launch.devices = plan.ranks_per_node;
  launch.backend = plan.backend;
  launch.cuda_ids = plan.cuda_ids;
  launch.nnodes = args.nnodes.value_or(site->nodes);
  launch.node_rank = args.node_rank.value_or(0);
  launch.master_addr = args.master_addr.value_or(site->master_addr);
  launch.master_port = args.master_port.value_or(site->master_port);
  if (launch.nnodes < 1 || launch.node_rank < 0 || launch.node_rank >= launch.nnodes)
    throw std::runtime_error("node rank " + std::to_string(launch.node_rank) +
                             " does not fit a group of " + std::to_string(launch.nnodes) +
                             " nodes");
  if (launch.nnodes > 1 && launch.master_port == 0)
    throw std::runtime_error("a worker group of " + std::to_string(launch.nnodes) +
                             " nodes needs a rendezvous port every node knows: set master_port "
                             "for the site or pass --master-port");
  launch.threads_per_rank = args.threads > 0 ? args.threads : plan.threads_per_rank;
  launch.progress_timeout_s = site->progress_timeout_s;
  launch.server = args.server;
  launch.tls_dir = args.tls_dir;
  launch.log_dir = args.log_dir;
  launch.work_dir = args.work_dir;
  return launch;
}

// What the site's policy says of the job: "" admits it (and puts the verified
// trainer into `launch`), else why not. A policy file that cannot be read
// refuses too: the job must not wait for a site that will never start.
std::string policy_verdict(const ClientArgs& args, const flare::jobspec::JobSpec& job,
                           flare::client::GroupLaunch& launch, spdlog::logger& log) {
  if (args.policy.empty()) {
    log.info("no site policy (--policy): this site runs the plugins the job names");
    return "";
  }
  try {
    const auto policy = flare::policy::load_policy(args.policy);
    auto refusal = flare::client::admit_job(policy, job, launch);
    if (refusal.empty())
      log.info("site policy {} admits the job: trainer {} (SHA-256 {}), {} devices",
               args.policy, launch.trainer_file.string(), launch.trainer_sha256,
               launch.world_size());
    return refusal;
  } catch (const std::exception& e) {
    return std::string("this site's policy cannot be applied: ") + e.what();
  }
}

// The site's certificate for every call to the server (--tls-dir), if given.
std::optional<flare::transport::TlsSettings> site_tls(const flare::client::GroupLaunch& launch) {
  if (launch.tls_dir.empty()) return std::nullopt;
  return flare::transport::load_tls_dir(launch.tls_dir);
}

// How long the supervisor keeps trying a server that does not answer.
std::chrono::milliseconds reconnect_window(const flare::jobspec::JobSpec& job) {
  return std::chrono::milliseconds(static_cast<int64_t>(job.reconnect_timeout_s * 1000));
}

// Tells the server (trying again while it restarts); false when it refused
// (the job is over) or stayed unreachable.
bool report(const flare::client::GroupLaunch& launch, const flare::client::RankFailure& failure,
            int restarts_left, bool restarting, const flare::jobspec::JobSpec& job,
            spdlog::logger& log) {
  try {
    // The failure names its generation itself: a supervisor does not register.
    flare::transport::ServerConnection server(
        launch.server, launch.site,
        std::chrono::milliseconds(static_cast<int64_t>(job.answer_timeout_s * 1000)),
        site_tls(launch));
    flare::transport::v1::Failure msg;
    msg.set_rank(failure.rank);
    msg.set_cause(failure.cause);
    msg.set_log_tail(failure.log_tail);
    msg.set_generation(launch.generation);
    msg.set_restarting(restarting);
    msg.set_restarts_left(restarts_left);
    msg.set_node_rank(launch.node_rank);
    msg.set_in_collective(failure.in_collective);
    if (failure.exit && failure.exit->exit_code) msg.set_exit_code(*failure.exit->exit_code);
    if (failure.exit && failure.exit->signal) msg.set_signal(*failure.exit->signal);
    if (failure.hang_s) msg.set_hang_s(*failure.hang_s);
    flare::client::deliver_within(server, reconnect_window(job),
                                  [&] { server.report_failure(msg); }, log);
    return true;
  } catch (const std::exception& e) {
    log.error("could not report the failure to the server: {}", e.what());
    return false;
  }
}

// flare-client --hash-plugin NAME [--plugin-path DIR ...]: prints the policy
// entry of the plugin installed here, so no operator computes a hash by hand.
int print_policy_entry(int argc, char** argv) {
  std::string name;
  std::vector<std::string> folders;
  po::options_description desc("flare-client --hash-plugin");
  desc.add_options()
    ("hash-plugin", po::value(&name)->required(), "the installed trainer plugin's name")
    ("plugin-path", po::value(&folders), "a folder to search first (repeatable)");
  try {
    po::variables_map vm;
    po::store(po::parse_command_line(argc, argv, desc), vm);
    po::notify(vm);
    std::cout << flare::client::installed_plugin_entry(
        name, std::vector<std::filesystem::path>(folders.begin(), folders.end()));
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "flare-client: " << e.what() << "\n";
    return 2;
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::string_view(argv[1]).starts_with("--hash-plugin"))
    return print_policy_entry(argc, argv);
  for (int i = 1; i < argc; ++i)
    if (std::string_view(argv[i]).starts_with("--startup"))
      return flare::site_daemon::run_site_daemon(argc, argv);
  flare::common::exit_when_parent_dies();
  umask(077);  // the site's logs, work files and models are its owner's alone
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
  log->info("started");
  // Before the first flare-worker starts (the device probe's included).
  log->info("workers start with {}",
            flare::common::use_lookup_order(flare::common::executable_dir() / "flare-worker"));
  try {
    const auto job = flare::jobspec::load_job(args.job);
    auto launch = plan_launch(args, job);
    if (const auto refusal = policy_verdict(args, job, launch, *log); !refusal.empty()) {
      log->error("refusing the job: {}", refusal);
      flare::transport::ServerConnection server(
          launch.server, launch.site,
          std::chrono::milliseconds(static_cast<int64_t>(job.answer_timeout_s * 1000)),
          site_tls(launch));
      flare::client::deliver_within(server, reconnect_window(job),
                                    [&] { server.refuse_job(launch.node_rank, refusal); }, *log);
      return 1;
    }
    const int max_restarts = job.sites[launch.site_index].max_restarts;
    const bool pick_port = launch.master_port == 0;  // one node only
    for (;; ++launch.generation) {
      // A fresh port per generation: the old store's port may linger in TIME_WAIT.
      if (pick_port) launch.master_port = flare::common::free_tcp_port();
      log->info("starting {} worker ranks (node {} of {}, {} threads each, generation {})",
                launch.devices, launch.node_rank, launch.nnodes, launch.threads_per_rank,
                launch.generation);
      flare::client::WorkerGroup group(launch, g_stop);
      const auto failure = group.supervise(g_stop);
      if (!failure) {
        log->info(g_stop ? "stopped on request" : "all ranks finished");
        return 0;
      }
      log->error("rank {} failed: {}; the group was stopped", failure->rank, failure->cause);
      // Every node of a group sees each failure of it and restarts once per
      // generation (docs/architecture.md, "Multi-node restarts and the
      // rendezvous"), so the generation is the restarts every node has spent.
      const bool restart = launch.generation < max_restarts && !g_stop;
      const int restarts_left =
          restart ? max_restarts - static_cast<int>(launch.generation) - 1 : 0;
      if (!report(launch, *failure, restarts_left, restart, job, *log) || !restart)
        return 1;
      log->warn("restarting the worker group from the current global model ({} restarts left)",
                restarts_left);
    }
  } catch (const std::exception& e) {
    log->error("{}", e.what());
    return 1;
  }
}
