// flare-worker: one rank of a site's worker group. Started by the site's
// supervisor (flare-client), never by hand.
#include <chrono>
#include <iostream>
#include <memory>
#include <optional>
#include <thread>

#include <boost/program_options.hpp>

#include <algorithm>

#include "common/local_host.hpp"
#include "common/logging.hpp"
#include "common/process_exit.hpp"
#include "jobspec/job_spec.hpp"
#include "plugin_host/crash_report.hpp"
#include "plugin_host/host_services.hpp"
#include "plugin_host/plugin_loader.hpp"
#include "transport/tls_settings.hpp"
#include "heartbeat/heartbeat.hpp"
#include "collectives/process_group_collectives.hpp"
#include "worker/device_probe.hpp"
#include "worker/heartbeat_sender.hpp"
#include "worker/progress_relay.hpp"
#include "worker/worker_session.hpp"

namespace po = boost::program_options;

namespace {

// How long rank 0 waits, before sending an update, for its round's metrics
// to reach the server; a server this slow gets the update without them.
constexpr auto kMetricsFlushTimeout = std::chrono::seconds(10);

struct WorkerArgs {
  std::string job, site, server, master_addr = "127.0.0.1";
  int site_index = 0, num_sites = 1, rank = 0, world_size = 1, local_rank = 0;
  int local_world_size = 1, master_port = 0, threads = 1;
  std::string work_dir, heartbeat;
  std::string tls_dir;  // the site's TLS folder; empty: plaintext
  int64_t generation = 0;
  std::string backend = "gloo";
  int cuda_device = -1;  // -1: this rank runs on the CPU
  // The trainer file its site's policy verified, and its SHA-256; empty: no policy.
  std::string trainer_file, trainer_sha256;
};

WorkerArgs parse(int argc, char** argv) {
  WorkerArgs a;
  po::options_description desc("flare-worker (started by flare-client)");
  desc.add_options()
    ("job", po::value(&a.job)->required(), "resolved job spec")
    ("site", po::value(&a.site)->required(), "site name")
    ("site-index", po::value(&a.site_index)->required(), "site index")
    ("num-sites", po::value(&a.num_sites)->required(), "number of sites")
    ("rank", po::value(&a.rank)->required(), "global rank in the worker group")
    ("world-size", po::value(&a.world_size)->required(), "ranks in the worker group")
    ("local-rank", po::value(&a.local_rank), "rank on this host")
    ("local-world-size", po::value(&a.local_world_size), "ranks on this host")
    ("master-addr", po::value(&a.master_addr), "rendezvous host")
    ("master-port", po::value(&a.master_port)->required(), "rendezvous port")
    ("server", po::value(&a.server), "server address (rank 0)")
    ("tls-dir", po::value(&a.tls_dir), "the site's ca.crt, participant.crt, participant.key (rank 0; none: plaintext)")
    ("threads", po::value(&a.threads), "intra-op threads")
    ("work-dir", po::value(&a.work_dir)->required(), "folder this rank may write")
    ("heartbeat", po::value(&a.heartbeat), "heartbeat file the supervisor watches")
    ("generation", po::value(&a.generation),
     "the worker group's restart count (the rendezvous'; the server hands out its own)")
    ("backend", po::value(&a.backend), "collectives backend: gloo | nccl")
    ("cuda-device", po::value(&a.cuda_device), "this rank's CUDA device (-1: CPU)")
    ("trainer-file", po::value(&a.trainer_file), "the trainer library the site's policy verified")
    ("trainer-sha256", po::value(&a.trainer_sha256), "its SHA-256, checked again as it loads");
  po::variables_map vm;
  po::store(po::parse_command_line(argc, argv, desc), vm);
  po::notify(vm);
  return a;
}

std::chrono::milliseconds milliseconds_of(double seconds) {
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
}

// While alive, a crash inside a plugin call is also written into the rank's
// heartbeat, so the supervisor's failure report says which plugin crashed in
// which call, not only the signal.
class CrashToHeartbeat {
 public:
  explicit CrashToHeartbeat(flare::heartbeat::HeartbeatFile& heartbeat) {
    // set_fatal_error is a copy and atomic stores: safe in a signal handler.
    flare::host::set_crash_sink(
        [](const char* report, size_t length, void* context) {
          static_cast<flare::heartbeat::HeartbeatFile*>(context)->set_fatal_error(
              {report, length}, false);
        },
        &heartbeat);
  }
  ~CrashToHeartbeat() { flare::host::set_crash_sink(nullptr, nullptr); }
  CrashToHeartbeat(const CrashToHeartbeat&) = delete;
  CrashToHeartbeat& operator=(const CrashToHeartbeat&) = delete;
};

// The rank's whole life; every object it made is destroyed when it returns.
int run_rank(int argc, char** argv) {
  if (argc == 2 && std::string(argv[1]) == "--probe-devices") {
    std::cout << flare::devices::to_json(flare::worker::probe_devices()).dump() << "\n";
    return 0;
  }
  flare::common::exit_when_parent_dies();
  flare::host::install_plugin_crash_reports("flare-worker");
  WorkerArgs args;
  try {
    args = parse(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "flare-worker: " << e.what() << "\n";
    return 2;
  }
  auto log = flare::common::make_logger(
      "worker", args.site + " rank " + std::to_string(args.rank));
  log->info("started");
  std::optional<flare::heartbeat::HeartbeatFile> heartbeat;
  std::optional<CrashToHeartbeat> crash_to_heartbeat;
  try {
    if (!args.heartbeat.empty()) {
      heartbeat.emplace(flare::heartbeat::HeartbeatFile::open(args.heartbeat));
      crash_to_heartbeat.emplace(*heartbeat);
    }
    const auto job = flare::jobspec::load_job(args.job);
    std::unique_ptr<flare::host::Collectives> group;
    if (args.world_size > 1) {
      flare::collectives::ProcessGroupOptions options;
      options.master_addr = args.master_addr;
      options.master_port = args.master_port;
      options.rank = args.rank;
      options.world_size = args.world_size;
      options.backend = args.backend;
      options.cuda_device = std::max(args.cuda_device, 0);
      // The ranks but 0 wait in the task broadcast while rank 0 waits for its
      // next task (up to a round) and, after losing the server, tries to reach
      // it again (up to the reconnect window): neither is a peer's failure.
      options.timeout = milliseconds_of(job.round_timeout_s + job.reconnect_timeout_s +
                                        2 * job.answer_timeout_s);
      options.rendezvous_timeout =
          milliseconds_of(job.sites.at(args.site_index).rendezvous_timeout_s);
      options.generation = args.generation;
      options.group_name = args.site;
      options.ranks_per_node = args.local_world_size;
      // Either way a peer that never came is the likely cause, not this rank.
      try {
        auto formed = std::make_unique<flare::collectives::ProcessGroupCollectives>(options);
        log->info("CPU all-reduces through {}", formed->cpu_all_reduce_path());
        group = std::move(formed);
      } catch (const flare::collectives::RendezvousError& e) {  // says who and where
        throw flare::worker::CollectiveFailure(e.what());
      } catch (const std::exception& e) {
        throw flare::worker::CollectiveFailure(std::string("joining the worker group: ") +
                                               e.what());
      }
    } else {
      group = std::make_unique<flare::host::SingleRankCollectives>();
    }
    log->info("joined the worker group ({} of {})", args.rank, args.world_size);

    std::unique_ptr<flare::transport::ServerConnection> server;
    std::optional<flare::worker::HeartbeatSender> heartbeats;  // rank 0
    if (args.rank == 0) {
      server = std::make_unique<flare::transport::ServerConnection>(
          args.server, args.site, milliseconds_of(job.answer_timeout_s),
          args.tls_dir.empty() ? std::nullopt
                               : std::optional(flare::transport::load_tls_dir(args.tls_dir)));
      server->set_log(log);  // resumed transfers are said in the rank's log
      server->wait_until_reachable(std::chrono::seconds(60));
      server->register_site(args.world_size);
      // Requests carry the generation the server handed out; --generation
      // (this node's restart count) only tells rendezvous stores apart.
      log->info("registered with the server (worker group generation {})", server->generation());
      // From here on, also while the trainer loads its model.
      heartbeats.emplace(*server, milliseconds_of(job.heartbeat_interval_s), log);
    }
    flare::worker::ProgressRelay relay(server.get(), heartbeat ? &*heartbeat : nullptr);
    flare::host::HostServices services(relay.callbacks(log), group.get());

    flare::host::PluginRequest request{job.trainer.name, job.trainer.path, job.plugin_path,
                                       job.trainer.version};
    if (!args.trainer_sha256.empty()) {  // the file its site's policy verified, and no other
      request.path = args.trainer_file;
      request.sha256 = args.trainer_sha256;
    }
    const auto plugin = flare::host::load_plugin(request, FLARE_PLUGIN_TRAINER);
    const std::string data_dir = job.data_dir.string();
    const std::string data_json = flare::jobspec::data_table(job).dump();
    flare_worker_info info{};
    info.struct_size = sizeof(info);
    info.site_name = args.site.c_str();
    info.site_index = args.site_index;
    info.num_sites = args.num_sites;
    info.rank = args.rank;
    info.world_size = args.world_size;
    info.local_rank = args.local_rank;
    info.local_world_size = args.local_world_size;
    info.device = args.cuda_device >= 0 ? DLDevice{kDLCUDA, args.cuda_device} : DLDevice{kDLCPU, 0};
    info.num_threads = args.threads;
    info.seed = job.seed;
    info.data_dir = data_dir.c_str();
    info.work_dir = args.work_dir.c_str();
    info.data_json = data_json.c_str();
    flare::host::TrainerInstance trainer(plugin, job.trainer.config.dump(), info, services);
    log->info("trainer created");

    flare::worker::WorkerSession session(trainer, *group, server.get(), log,
                                         heartbeat ? &*heartbeat : nullptr);
    relay.follow(session);
    session.stay_registered({.server_address = args.server,
                             .timeout = milliseconds_of(job.reconnect_timeout_s),
                             .heartbeats = heartbeats ? &*heartbeats : nullptr});
    session.before_sending_update([&relay, &log] {
      if (!relay.flush_metrics(kMetricsFlushTimeout))
        log->warn("some of this round's metrics did not reach the server");
    });
    const std::string reason = session.run();
    if (!reason.empty()) log->warn("the server ended the job: {}", reason);
    log->info("done");
    return 0;
  } catch (const std::exception& e) {
    log->error("{}", e.what());
    // The supervisor puts this in its failure report, so a plugin's own
    // message reaches the user without digging through logs.
    if (heartbeat) heartbeat->set_fatal_error(e.what(), flare::worker::failed_in_collective(e));
    return 1;
  }
}

}  // namespace

int main(int argc, char** argv) {
  // Without LibTorch's static destructors: the supervisor sees the rank end
  // 0.1 s sooner.
  flare::common::exit_skipping_static_destructors(run_rank(argc, argv));
}
