#include "site_daemon/daemon_options.hpp"

#include <cstdlib>
#include <stdexcept>

#include <boost/program_options.hpp>

#include "common/local_host.hpp"

namespace flare::site_daemon {

namespace po = boost::program_options;

DaemonOptions parse_daemon_options(int argc, char** argv) {
  std::string startup, workspace, policy, data_dir, job_program, master_addr;
  std::vector<std::string> plugin_path;
  int nnodes = 0, node_rank = 0, master_port = 0;
  po::options_description desc("flare-client --startup");
  desc.add_options()
    ("startup", po::value(&startup)->required(), "this site's startup folder (flare-provision)")
    ("workspace", po::value(&workspace), "where jobs run (default: <startup>/../workspace)")
    ("policy", po::value(&policy), "this site's policy file, applied to every job")
    ("data-dir", po::value(&data_dir), "replaces every job's data.dir: a site's data is its own")
    ("plugin-path", po::value(&plugin_path), "replaces every job's plugin_path (repeatable)")
    ("job-program", po::value(&job_program),
     "the program each job runs as (default: this flare-client; also FLARE_JOB_PROGRAM)")
    ("nnodes", po::value(&nnodes), "nodes this site's worker group spans")
    ("node-rank", po::value(&node_rank), "this node's rank (Slurm: $SLURM_NODEID)")
    ("master-addr", po::value(&master_addr), "rendezvous host (node 0)")
    ("master-port", po::value(&master_port), "rendezvous port");
  po::variables_map vm;
  po::store(po::parse_command_line(argc, argv, desc), vm);
  po::notify(vm);
  DaemonOptions o;
  o.startup = startup;
  if (vm.count("workspace")) o.workspace = workspace;
  if (vm.count("policy")) o.policy = policy;
  if (vm.count("data-dir")) o.data_dir = data_dir;
  if (vm.count("job-program")) {
    o.job_program = job_program;
  } else if (const char* program = std::getenv(kJobProgramVariable); program && *program) {
    o.job_program = program;
  }
  o.plugin_path.assign(plugin_path.begin(), plugin_path.end());
  if (vm.count("nnodes")) o.nnodes = nnodes;
  if (vm.count("node-rank")) o.node_rank = node_rank;
  if (vm.count("master-addr")) o.master_addr = master_addr;
  if (vm.count("master-port")) o.master_port = master_port;
  const int nodes = o.nnodes.value_or(1), rank = o.node_rank.value_or(0);
  if (nodes < 1 || rank < 0 || rank >= nodes)
    throw std::runtime_error("--node-rank " + std::to_string(rank) + " does not fit --nnodes " +
                             std::to_string(nodes));
  return o;
}

SiteSetup site_setup(const DaemonOptions& o, const std::string& site) {
  const auto absolute = [](const std::filesystem::path& p) {
    return std::filesystem::absolute(p).lexically_normal();
  };
  SiteSetup s;
  s.site = site;
  s.startup = absolute(o.startup);
  s.workspace = absolute(o.workspace.value_or(o.startup / ".." / "workspace"));
  s.job_program = o.job_program ? absolute(*o.job_program)
                                : common::executable_dir() / "flare-client";
  if (o.data_dir) s.data_dir = absolute(*o.data_dir);
  if (o.policy) s.policy = absolute(*o.policy);
  for (const auto& p : o.plugin_path) s.plugin_path.push_back(absolute(p));
  s.nnodes = o.nnodes;
  s.node_rank = o.node_rank;
  s.master_port = o.master_port;
  s.master_addr = o.master_addr;
  return s;
}

}  // namespace flare::site_daemon
