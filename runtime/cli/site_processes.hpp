// The sites' flare-client processes of a local run: started (one per site, or
// per node of a site spanning nodes), watched while the job runs, and made to
// leave when it ends, each step bounded in time and interruptible.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/child_process.hpp"
#include "jobspec/job_spec.hpp"

namespace flare::cli {

struct SiteProcess {
  std::string site;
  common::ChildProcess client;
};

// What every client is told: where the job file, logs, work folders and the
// server are, its threads per rank and this machine's devices (JSON).
struct ClientLaunch {
  std::filesystem::path job_file, logs_dir, sites_dir;
  std::string server_address;
  // A site's TLS folder (--tls-dir), made as its client starts; none: plaintext.
  std::function<std::filesystem::path(const std::string& site)> tls_dir_for;
  int threads_per_rank = 1;
  std::string device_inventory;
  // Sites that run under a policy file (flare-run --site-policy): by name.
  std::map<std::string, std::filesystem::path> site_policies;
};

// Starts every site's client, one after another, while `keep_starting()`
// holds: on a loaded machine starting a thousand processes takes minutes,
// and an interrupt or the start timeout must not wait for all of them.
std::vector<SiteProcess> start_clients(const jobspec::JobSpec& job, const ClientLaunch& launch,
                                       const std::function<bool()>& keep_starting);

// Where the waiting at the end is told: the terminal and the server's log.
using Say = std::function<void(const std::string&)>;

// How long sites get to leave by themselves once the job succeeded (each
// runs a final barrier and exits), and once it failed (then they are stopped
// rather than waited for). After it: SIGTERM, and SIGKILL kStopGrace later.
constexpr auto kClientExitGrace = std::chrono::seconds(30);
constexpr auto kClientExitGraceOnFailure = std::chrono::seconds(2);
constexpr auto kStopGrace = std::chrono::seconds(3);
// After this long the waiting is told, naming the sites still running.
constexpr auto kSayWaitingAfter = std::chrono::seconds(2);

// Lets the clients leave within `grace`, then stops the rest together.
// A stopped client (SIGSTOP) is not waited for: it can do nothing until it
// is continued, so it is killed at once (its ranks follow it: they die with
// their parent). Bound: grace + kStopGrace.
void let_clients_leave(std::vector<SiteProcess>& clients, std::chrono::milliseconds grace,
                       const Say& say);

}  // namespace flare::cli
