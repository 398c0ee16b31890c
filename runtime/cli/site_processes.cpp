#include "cli/site_processes.hpp"

#include <csignal>
#include <thread>

#include "common/local_host.hpp"

namespace flare::cli {

namespace {

constexpr auto kPollInterval = std::chrono::milliseconds(50);

std::string pid_text(const SiteProcess& p) { return std::to_string(p.client.pid()); }

// "site-1 (pid 123), site-2 (pid 124)", the first few of thousands.
std::string names_of(const std::vector<SiteProcess*>& clients) {
  constexpr size_t kNamed = 10;
  std::string names;
  for (size_t i = 0; i < clients.size() && i < kNamed; ++i) {
    const SiteProcess& c = *clients[i];
    names += (names.empty() ? "" : ", ") + c.site + " (pid " + pid_text(c) + ")";
  }
  if (clients.size() > kNamed) names += " and " + std::to_string(clients.size() - kNamed) + " more";
  return names;
}

std::string seconds_text(std::chrono::milliseconds d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::seconds>(d).count()) + " s";
}

}  // namespace

std::vector<SiteProcess> start_clients(const jobspec::JobSpec& job, const ClientLaunch& launch,
                                       const std::function<bool()>& keep_starting) {
  const auto program = common::executable_dir() / "flare-client";
  std::vector<SiteProcess> clients;
  for (const auto& site : job.sites) {
    if (!keep_starting()) break;
    // The clients run here too: they plan on this inventory instead of probing again.
    std::vector<std::string> argv{program.string(), "--job", launch.job_file.string(), "--site",
                                  site.name, "--server", launch.server_address, "--log-dir",
                                  launch.logs_dir.string(), "--work-dir", launch.sites_dir.string(),
                                  "--threads", std::to_string(launch.threads_per_rank),
                                  "--device-inventory", launch.device_inventory};
    if (const auto policy = launch.site_policies.find(site.name);
        policy != launch.site_policies.end()) {
      argv.push_back("--policy");
      argv.push_back(policy->second.string());
    }
    if (launch.tls_dir_for) {
      argv.push_back("--tls-dir");
      argv.push_back(launch.tls_dir_for(site.name).string());
    }
    if (site.nodes == 1) {
      clients.push_back(
          {site.name, common::ChildProcess(argv, launch.logs_dir / (site.name + ".log"))});
      continue;
    }
    // All nodes are on this machine, so one port for the group's rendezvous can be picked here.
    const int port = site.master_port != 0 ? site.master_port : common::free_tcp_port();
    for (int node = 0; node < site.nodes; ++node) {
      auto node_argv = argv;
      for (const std::string& a : {std::string("--nnodes"), std::to_string(site.nodes),
                                   std::string("--node-rank"), std::to_string(node),
                                   std::string("--master-addr"), site.master_addr,
                                   std::string("--master-port"), std::to_string(port)})
        node_argv.push_back(a);
      const auto log = launch.logs_dir / (site.name + ".node" + std::to_string(node) + ".log");
      clients.push_back({site.name, common::ChildProcess(node_argv, log)});
    }
  }
  return clients;
}

void let_clients_leave(std::vector<SiteProcess>& clients, std::chrono::milliseconds grace,
                       const Say& say) {
  using Clock = std::chrono::steady_clock;
  const auto began = Clock::now();
  bool said_waiting = false;
  for (;;) {
    std::vector<SiteProcess*> running;
    for (auto& c : clients) {
      if (c.client.poll()) continue;
      if (c.client.stopped()) {
        say(c.site + "'s client process (pid " + pid_text(c) +
            ") is stopped (SIGSTOP or SIGTSTP): not waiting for it; killing it and its ranks");
        c.client.signal(SIGKILL);
        c.client.wait_for(kStopGrace);
        continue;
      }
      running.push_back(&c);
    }
    if (running.empty()) return;
    const auto waited = Clock::now() - began;
    if (waited >= grace) {
      say("stopping the client processes that did not exit within " + seconds_text(grace) +
          ": " + names_of(running));
      std::vector<common::ChildProcess*> processes;
      for (SiteProcess* c : running) processes.push_back(&c->client);
      common::stop_together(processes, kStopGrace);
      return;
    }
    if (!said_waiting && waited >= kSayWaitingAfter) {
      said_waiting = true;
      say("waiting for client processes to exit: " + names_of(running) +
          "; they are stopped after " + seconds_text(grace));
    }
    std::this_thread::sleep_for(kPollInterval);
  }
}

}  // namespace flare::cli
