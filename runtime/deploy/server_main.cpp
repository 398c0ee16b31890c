// flare-server --startup DIR: the long-running server of a provisioned
// project. Holds the job table, the admins' service and the sites' job desk
// on its main port (mutual TLS), and runs each job in a child process of its
// own (flare-server --run-job, job_process.hpp) on a port of the job-port
// range. Runs until SIGTERM/SIGINT, which aborts the running jobs.
#include <sys/stat.h>

#include <atomic>
#include <csignal>
#include <iostream>

#include <boost/program_options.hpp>

#include "common/local_host.hpp"
#include "common/logging.hpp"
#include "deploy/deploy_services.hpp"
#include "deploy/job_folder.hpp"
#include "deploy/job_process.hpp"
#include "deploy/job_runner.hpp"
#include "identity/startup_kit.hpp"
#include "plugin_host/crash_report.hpp"
#include "server/rpc_service.hpp"

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace {

std::atomic<bool> g_stop{false};
void on_stop(int) { g_stop = true; }

constexpr int kExitBadInput = 2;
constexpr auto kStopGrace = std::chrono::seconds(20);

struct ServerArgs {
  std::string startup, workspace, listen = "0.0.0.0", job_ports, run_job;
  std::vector<std::string> plugin_path;
  int port = 0;  // --run-job: the job's port
  bool resume = false;  // --run-job: go on after the job's checkpoint
};

ServerArgs parse(int argc, char** argv) {
  ServerArgs a;
  po::options_description desc("flare-server");
  desc.add_options()
    ("startup", po::value(&a.startup)->required(), "the server's startup folder (flare-provision)")
    ("workspace", po::value(&a.workspace), "where jobs' folders go (default: <startup>/../workspace)")
    ("listen", po::value(&a.listen), "the address to listen on (default 0.0.0.0)")
    ("job-ports", po::value(&a.job_ports),
     "FIRST-LAST: the ports jobs' servers listen on (default: port+1 to port+100)")
    ("plugin-path", po::value(&a.plugin_path), "a folder of aggregator plugins (repeatable)")
    ("run-job", po::value(&a.run_job), "(internal) run one job's server in this job folder")
    ("port", po::value(&a.port), "(internal, with --run-job) the job's port")
    ("resume", po::bool_switch(&a.resume),
     "(internal, with --run-job) go on after the job's newest good checkpoint");
  po::variables_map vm;
  po::store(po::parse_command_line(argc, argv, desc), vm);
  po::notify(vm);
  return a;
}

std::pair<int, int> port_range(const std::string& text, int main_port) {
  if (text.empty()) return {main_port + 1, std::min(65535, main_port + 100)};
  const auto dash = text.find('-');
  try {
    const int first = std::stoi(text.substr(0, dash));
    const int last = dash == std::string::npos ? first : std::stoi(text.substr(dash + 1));
    if (first >= 1 && last <= 65535 && first <= last && (main_port < first || main_port > last))
      return {first, last};
  } catch (const std::exception&) {
  }
  throw std::runtime_error("--job-ports: expected FIRST-LAST, ports 1-65535 not holding the main "
                           "port " + std::to_string(main_port) + ", found '" + text + "'");
}

flare::deploy::ServerSide server_side(const flare::identity::StartupKit& kit,
                                      const ServerArgs& args) {
  flare::deploy::ServerSide side{kit.config.sites, {}};
  for (const auto& dir : args.plugin_path) side.plugin_path.push_back(fs::absolute(dir));
  return side;
}

int serve(const ServerArgs& args) {
  using namespace flare;
  const auto kit = identity::load_startup_kit(args.startup);
  if (kit.identity().role != identity::Role::server)
    throw std::runtime_error(args.startup + " is the startup folder of " +
                             identity::identity_uri(kit.identity()) + ", not of a server");
  const fs::path workspace = args.workspace.empty()
                                 ? fs::absolute(args.startup).lexically_normal().parent_path() /
                                       "workspace"
                                 : fs::absolute(args.workspace);
  const fs::path jobs_dir = workspace / "jobs";
  fs::create_directories(workspace / "logs");
  fs::create_directories(jobs_dir);
  fs::permissions(workspace, fs::perms::owner_all);
  auto log = common::make_file_logger("flare-server", workspace / "logs" / "flare-server.log");
  const auto [first_port, last_port] = port_range(args.job_ports, kit.config.server_port);

  deploy::JobTable table;
  int64_t next_id = 1;
  for (auto& job : deploy::read_jobs(jobs_dir, next_id)) table.restore(std::move(job));
  table.set_next_id(next_id);

  server::AuditLog audit(workspace / "logs" / "audit.jsonl");
  const auto side = server_side(kit, args);
  deploy::JobDeskService desk(table, &audit, {.project_sites = kit.config.sites});
  std::map<std::string, std::string> roles;
  for (const auto& admin : kit.config.admins) roles[admin.name] = admin.role;
  deploy::AdminService admin(table, &audit,
                             {.admin_roles = roles, .server = side, .jobs_dir = jobs_dir});
  deploy::JobRunner runner(table,
                           {.server_program = common::executable_dir() / "flare-server",
                            .jobs_dir = jobs_dir,
                            .startup_dir = fs::absolute(args.startup),
                            .listen_host = args.listen,
                            .first_port = first_port,
                            .last_port = last_port,
                            .server = side},
                           *log);
  // Jobs the last stop cut off, with a checkpoint, go on where their sites'
  // clients still call them (job_folder.hpp: read_jobs).
  for (const auto& job : table.list())
    if (job.state == deploy::JobState::running) runner.resume(job);
  server::RpcServer rpc({&desk, &admin}, args.listen, kit.config.server_port,
                        server::server_credentials(server::server_tls_from_kit(kit), &audit));
  const std::string ready = "flare-server: project '" + kit.config.project + "', listening on " +
                            rpc.address() + " (mutual TLS), jobs on ports " +
                            std::to_string(first_port) + "-" + std::to_string(last_port) +
                            ", workspace " + workspace.string();
  log->info("{}", ready);
  std::cout << ready << std::endl;

  while (!g_stop) {
    runner.tick();
    table.wait_for_change(std::chrono::milliseconds(200));
  }
  log->info("stopping: aborting {} running job(s)", runner.running());
  std::cout << "flare-server: stopping (" << runner.running() << " running job(s) aborted)"
            << std::endl;
  runner.stop_all("the server is stopping", kStopGrace);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace flare;
  std::signal(SIGPIPE, SIG_IGN);
  umask(077);  // jobs' models, logs and the audit are the operator's alone
  ServerArgs args;
  try {
    args = parse(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "flare-server: " << e.what() << "\n";
    return kExitBadInput;
  }
  std::signal(SIGTERM, on_stop);
  std::signal(SIGINT, on_stop);
  if (!args.run_job.empty()) {
    // One job's server: it ends with its parent, like a site's ranks.
    common::exit_when_parent_dies();
    host::install_plugin_crash_reports("flare-server (job)");
    try {
      const auto kit = identity::load_startup_kit(args.startup);
      return deploy::run_job_process({.job_dir = args.run_job,
                                      .startup = args.startup,
                                      .listen_host = args.listen,
                                      .port = args.port,
                                      .server = server_side(kit, args),
                                      .resume = args.resume});
    } catch (const std::exception& e) {
      std::cerr << "flare-server --run-job: " << e.what() << "\n";
      return 1;
    }
  }
  try {
    return serve(args);
  } catch (const identity::IdentityError& e) {
    std::cerr << "flare-server: " << e.what() << "\n";
    return kExitBadInput;
  } catch (const std::exception& e) {
    std::cerr << "flare-server: " << e.what() << "\n";
    return 1;
  }
}
