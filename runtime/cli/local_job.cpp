#include "cli/local_job.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <future>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/child_process.hpp"
#include "devices/device_plan.hpp"
#include "common/local_host.hpp"
#include "common/logging.hpp"
#include "common/printable_text.hpp"
#include "cli/input_checks.hpp"
#include "cli/run_identities.hpp"
#include "cli/run_workspace.hpp"
#include "cli/site_processes.hpp"
#include "plugin_host/plugin_loader.hpp"
#include "server/federated_server.hpp"

namespace flare::cli {

namespace {

std::atomic<bool> g_interrupted{false};
void on_interrupt(int) { g_interrupted = true; }

constexpr int kLogTailLines = 20;
// How long a report of a failing site may trail its process's exit.
constexpr auto kFailureReportGrace = std::chrono::milliseconds(1500);

// The start-up steps taken before the server log exists, logged once it does
// (bench/startup builds its timeline from them).
class StartupSteps {
 public:
  void done(const std::string& step) {
    const auto now = Clock::now();
    steps_.emplace_back(step, milliseconds(now - last_));
    last_ = now;
  }
  void log_to(spdlog::logger& log) const {
    for (const auto& [step, ms] : steps_) log.info("start-up: {} in {:.0f} ms", step, ms);
    log.info("start-up: flare-run began the job {:.0f} ms ago", milliseconds(Clock::now() - began_));
  }

 private:
  using Clock = std::chrono::steady_clock;
  static double milliseconds(Clock::duration d) {
    return std::chrono::duration<double, std::milli>(d).count();
  }
  Clock::time_point began_ = Clock::now();
  Clock::time_point last_ = began_;
  std::vector<std::pair<std::string, double>> steps_;
};

// This machine's devices, and the ranks all sites together will run on them.
struct LocalPlan {
  devices::DeviceInventory devices;
  int64_t total_ranks = 0;
};

// Plans every site's devices on this machine (where all of them run), so a job
// asking for what is not here, or for far more CPU ranks than it has cores,
// fails before anything starts.
LocalPlan plan_local_ranks(const jobspec::JobSpec& job) {
  LocalPlan plan{devices::local_devices(common::executable_dir() / "flare-worker")};
  int64_t cpu_ranks = 0;
  for (const auto& site : job.sites) {
    const auto site_plan = devices::plan_devices(site, plan.devices);
    const int64_t ranks = int64_t{site_plan.ranks_per_node} * site.nodes;
    plan.total_ranks += ranks;
    if (site_plan.accelerator == "cpu") cpu_ranks += ranks;
  }
  devices::check_cpu_ranks_fit(job, cpu_ranks, plan.devices);
  return plan;
}

// Rank 0 of the first site, as its client will start it.
PlannedRank first_rank_of(const jobspec::JobSpec& job, const LocalPlan& plan) {
  const jobspec::SiteSpec& site = job.sites.front();
  const auto group = devices::plan_devices(site, plan.devices, plan.total_ranks);
  return {.world_size = group.ranks_per_node * site.nodes,
          .local_world_size = group.ranks_per_node,
          .device = group.cuda_ids.empty() ? DLDevice{kDLCPU, 0}
                                           : DLDevice{kDLCUDA, group.cuda_ids.front()},
          .num_threads = group.threads_per_rank};
}

// Each --site-policy names a site of the job and a file: the site's client
// reads and enforces it (a wrong policy file is the site's refusal, reported).
void check_site_policies(const jobspec::JobSpec& job,
                         const std::map<std::string, std::filesystem::path>& site_policies) {
  for (const auto& [site, file] : site_policies) {
    if (std::none_of(job.sites.begin(), job.sites.end(),
                     [&](const auto& s) { return s.name == site; }))
      throw InputError("--site-policy " + site + "=" + file.string() + ": expected a site of " +
                       "the job (" + jobspec::site_list(job) + "), found '" + site + "'");
    std::error_code ec;
    if (!std::filesystem::is_regular_file(file, ec))
      throw InputError("--site-policy " + site + "=" + file.string() +
                       ": expected a policy file, found none");
  }
}

ClientLaunch client_launch(const RunWorkspace& ws, const std::string& server_address,
                           const LocalPlan& plan, RunIdentities& identities) {
  // Every node of every site runs here: threads are shared by all their ranks.
  const int64_t cores = std::max(1u, std::thread::hardware_concurrency());
  const int64_t threads = std::max<int64_t>(1, cores / std::max<int64_t>(1, plan.total_ranks));
  return {.job_file = ws.job_file(),
          .logs_dir = ws.logs_dir(),
          .sites_dir = ws.sites_dir(),
          .server_address = server_address,
          .tls_dir_for = [&identities](const std::string& site) {
            return identities.site_dir(site);
          },
          .threads_per_rank = static_cast<int>(threads),
          .device_inventory = devices::to_json(plan.devices).dump()};
}

// One client per site, or per node of a site whose group spans nodes.
int64_t client_count(const jobspec::JobSpec& job) {
  int64_t count = 0;
  for (const auto& site : job.sites) count += site.nodes;
  return count;
}

// Tells the server of a site process that ended early, once each (`lost`,
// one flag per client): the server drops the site and goes on while
// job.min_clients sites can still answer, else ends the job with the reason.
void watch_clients(std::vector<SiteProcess>& clients, std::vector<bool>& lost,
                   server::FederatedServer& server) {
  for (size_t i = 0; i < clients.size(); ++i) {
    auto& [site, client] = clients[i];
    const auto status = client.poll();
    if (!status || lost[i]) continue;
    lost[i] = true;
    // The site's own report (with the failed rank's log) usually follows its
    // exit by a moment; give it the chance to arrive first.
    std::this_thread::sleep_for(kFailureReportGrace);
    server.site_lost(site, site + "'s client process ended early (" + status->describe() +
                               "); last lines of its log:\n" +
                               common::read_log_tail(client.log_file(), kLogTailLines));
    return;
  }
}

}  // namespace

int run_local_job(const jobspec::JobSpec& job, std::ostream& out, bool interactive,
                  const std::map<std::string, std::filesystem::path>& site_policies,
                  const ResumePoint* resume) {
  StartupSteps startup;
  check_site_policies(job, site_policies);
  // Everything that can be wrong with the input is checked before any process
  // starts, the cheap checks first. A CUDA build probes its devices in a
  // flare-worker process (a LibTorch load): that runs while this one loads
  // the plugins.
  check_data_dir(job);
  if (!resume) check_workspace(job);  // a resumed run stays in its own folder
  check_server_host(job);
  auto planning = std::async(std::launch::async, [&] { return plan_local_ranks(job); });
  const JobPlugins plugins = load_job_plugins(job);
  startup.done("checked the plugins");
  const LocalPlan plan = planning.get();
  startup.done("planned the devices");
  validate_plugin_configs(job, plugins, first_rank_of(job, plan));
  startup.done("checked the plugins' configs");

  const RunWorkspace ws =
      resume ? RunWorkspace::in_folder(resume->run_dir) : RunWorkspace::create(job);
  server::ProgressDisplay display(out, interactive, job.num_rounds);
  display.message("flare-run: job '" + job.name + "', " + std::to_string(job.sites.size()) +
                  " sites, " + std::to_string(job.num_rounds) + " rounds; workspace " +
                  ws.root().string());
  display.message("data: " + job.data_dir.string());
  if (job.use_tracking) {
    display.message("tracking: TensorBoard event files in " + ws.tensorboard_dir().string() +
                    " (tensorboard --logdir " + ws.tensorboard_dir().string() + ")");
  }

  // A resumed run gets a new CA too: the first one's key was never written,
  // and every participant starts afresh (tls/<site> is issued again).
  RunIdentities identities(ws.tls_dir(), job.name);
  std::optional<server::FederatedServer> made;
  try {
    made.emplace(job, plugins.aggregator, server_files(ws, job), display, identities.server_tls(),
                 resume != nullptr);
  } catch (const server::NothingToResume& e) {
    // The server checks what the scan could not (the job's fingerprint, the
    // structure) and says "nothing to resume in RUN_DIR: ...": still before
    // any site started.
    throw InputError(e.what());
  }
  server::FederatedServer& server = *made;
  if (resume)
    display.message("resuming " + ws.root().string() + " after round " +
                    std::to_string(resume->round) + " (checkpoint " +
                    resume->checkpoint_file.string() + ")");
  startup.done("created the run folder and the server");
  startup.log_to(server.log());

  // Ctrl-C ends the job through the same path as a failure: sites told,
  // processes stopped and reaped, files written so far kept.
  std::signal(SIGINT, on_interrupt);
  std::signal(SIGTERM, on_interrupt);
  // Starting stops at an interrupt or once the sites could no longer register
  // in time; the server then fails the job at once, naming the sites missing.
  const auto start_deadline =
      std::chrono::steady_clock::now() +
      std::chrono::milliseconds(static_cast<int64_t>(job.worker_start_timeout_s * 1000));
  ClientLaunch launch = client_launch(ws, server.address(), plan, identities);
  for (const auto& [site, file] : site_policies)
    launch.site_policies[site] = std::filesystem::absolute(file);
  auto clients = start_clients(job, launch, [&] {
    return !g_interrupted && std::chrono::steady_clock::now() < start_deadline;
  });
  server.log().info("started {} of {} client processes", clients.size(), client_count(job));
  std::vector<bool> lost_clients(clients.size());
  const auto outcome = server.run([&] {
    if (g_interrupted) server.abort("interrupted (SIGINT/SIGTERM)");
    watch_clients(clients, lost_clients, server);
  });

  // Sites learn the end from their next task request; give them time to leave.
  let_clients_leave(clients, outcome.success ? kClientExitGrace : kClientExitGraceOnFailure,
                    [&](const std::string& line) {
                      display.message("flare-run: " + line);
                      server.log().warn("{}", line);
                    });
  display.summary(server.figures());
  out << "\nworkspace: " << ws.root().string() << "\n" << write_report(ws) << "\n";
  if (!outcome.success) {
    // The reason may quote a plugin's own text.
    out << "\nflare-run: the job failed: "
        << common::printable(outcome.failure, common::LineBreaks::Keep) << "\n";
    return kExitRunFailure;
  }
  return kExitSuccess;
}

}  // namespace flare::cli
