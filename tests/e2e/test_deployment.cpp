// The deployment end to end on one machine: flare-provision's folders, a
// long-running flare-server, a flare-client daemon per site, and flare-admin
// submitting, listing, aborting and downloading. A failed, an aborted and a
// refused job leave the server and the sites serving the next one.
#include <doctest/doctest.h>

#include <csignal>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/child_process.hpp"
#include "common/local_host.hpp"
#include "background_run.hpp"
#include "e2e_support.hpp"

using namespace flare::e2e;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

const fs::path kBin = fs::path(FLARE_RUN_BIN).parent_path();
const fs::path kTrainer = FLARE_C_TRAINER;  // libflare_c_counter_trainer.so

// How often `what` occurs in `text`.
int count_of(const std::string& text, const std::string& what) {
  int n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// The line of `text` that starts with `prefix` ("" when none).
std::string line_starting(const std::string& text, const std::string& prefix) {
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);)
    if (line.starts_with(prefix)) return line;
  return "";
}

std::string read_file(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A provisioned project (server 127.0.0.1, site-1, site-2, a project admin and
// a member) with the server and both sites' daemons running; site-2 under a
// policy that allows the counter trainer on at most one device.
struct Deployment {
  TempFolder dir;
  int port = flare::common::free_tcp_port();
  fs::path project = dir.path() / "out" / "demo";
  std::vector<flare::common::ChildProcess> daemons;  // the server first
  std::vector<std::string> server_argv;

  // `site1_nodes`: site-1's worker group spans that many nodes, each a
  // daemon of its own (own workspace), rendezvous on node 0.
  explicit Deployment(int site1_nodes = 1) {
    write_text(dir.path() / "project.toml",
               "[project]\nname = \"demo\"\n[server]\nname = \"127.0.0.1\"\nport = " +
                   std::to_string(port) +
                   "\n[sites.site-1]\n[sites.site-2]\n"
                   "[admins.\"boss@org.com\"]\nrole = \"project_admin\"\n"
                   "[admins.\"member@org.com\"]\nrole = \"member\"\n");
    const auto provision = run_command({(kBin / "flare-provision").string(),
                                        (dir.path() / "project.toml").string(), "--output",
                                        (dir.path() / "out").string()});
    INFO(provision.output);
    REQUIRE(provision.exit_code == 0);
    const auto entry = run_command({(kBin / "flare-client").string(), "--hash-plugin",
                                    "c_counter_trainer", "--plugin-path",
                                    kTrainer.parent_path().string()});
    REQUIRE(entry.exit_code == 0);
    write_text(dir.path() / "site-2-policy.toml", "[limits]\nmax_devices = 1\n\n" + entry.output);
    // Job ports: the free port's neighbours are likely free too; the server
    // skips any that is not.
    server_argv = {(kBin / "flare-server").string(), "--startup", startup("127.0.0.1").string(),
                   "--listen", "127.0.0.1", "--job-ports",
                   std::to_string(port + 1) + "-" + std::to_string(port + 40)};
    daemons.emplace_back(server_argv, dir.path() / "server.out");
    // Admins are told off while it is not listening yet (no retry): wait for it.
    REQUIRE(wait_for_text(dir.path() / "server.out", "listening on", 1, 60 * kRunTimeScale));
    const int master_port = flare::common::free_tcp_port();
    for (const std::string site : {"site-1", "site-2"}) {
      const int nodes = site == "site-1" ? site1_nodes : 1;
      for (int node = 0; node < nodes; ++node) {
        std::vector<std::string> argv = {(kBin / "flare-client").string(), "--startup",
                                         startup(site).string(), "--plugin-path",
                                         kTrainer.parent_path().string(), "--data-dir",
                                         dir.path().string()};
        if (site == "site-2") {
          argv.push_back("--policy");
          argv.push_back((dir.path() / "site-2-policy.toml").string());
        }
        if (nodes > 1) {
          const auto workspace = dir.path() / (site + "-node-" + std::to_string(node));
          argv.insert(argv.end(), {"--workspace", workspace.string(), "--nnodes",
                                   std::to_string(nodes), "--node-rank", std::to_string(node),
                                   "--master-addr", "127.0.0.1", "--master-port",
                                   std::to_string(master_port)});
        }
        daemons.emplace_back(argv, dir.path() / (site + "-" + std::to_string(node) + ".out"));
      }
    }
  }
  ~Deployment() { flare::common::stop_together(ptrs(), 5000ms); }
  std::vector<flare::common::ChildProcess*> ptrs() {
    std::vector<flare::common::ChildProcess*> all;
    for (auto& d : daemons) all.push_back(&d);
    return all;
  }

  fs::path startup(const std::string& name) const { return project / name / "startup"; }
  fs::path job_dir(const std::string& id) const { return project / "127.0.0.1" / "workspace" / "jobs" / id; }
  fs::path server_workspace() const { return project / "127.0.0.1" / "workspace"; }

  CommandResult admin(std::vector<std::string> args, const std::string& who = "boss@org.com") {
    args.insert(args.begin(), {(kBin / "flare-admin").string(), "--startup", startup(who).string()});
    return run_command(args, 180);
  }
  // Submits a job of the counter trainer; returns its id.
  std::string submit(const std::string& name, int rounds, const std::string& config = "",
                     const std::string& devices = "devices = 1", bool wait = false,
                     const std::string& extra = "") {
    const auto file = dir.path() / (name + ".toml");
    write_text(file, "[job]\nname = \"" + name + "\"\nnum_rounds = " + std::to_string(rounds) +
                         "\n[clients]\ncount = 2\n" + devices +
                         "\naccelerator = \"cpu\"\n[data]\ndir = \"/elsewhere\"\n"
                         "[trainer]\nplugin = \"c_counter_trainer\"\n[trainer.config]\n" + config +
                         "\n[aggregator]\nplugin = \"fedavg\"\n" + extra);
    std::vector<std::string> args = {"submit", file.string()};
    if (wait) args.push_back("--wait");
    last = admin(args);
    const auto at = last.output.find("job-");
    REQUIRE_MESSAGE(at != std::string::npos, last.output);
    return last.output.substr(at, last.output.find_first_of(" \n", at) - at);
  }
  CommandResult last;
};

}  // namespace

TEST_CASE("a deployment runs jobs submitted by an admin; failures stay inside their job") {
  Deployment d;

  // 1. A job runs to the end; the admin lists it, reads its metrics, gets its model.
  const auto first = d.submit("first", 3, "", "devices = 1", true);
  INFO(d.last.output);
  REQUIRE(d.last.exit_code == 0);
  CHECK(mentions(d.last.output, "finished"));
  auto list = d.admin({"list"});
  CHECK(list.exit_code == 0);
  const auto row = line_starting(list.output, first + " ");
  CHECK_MESSAGE(mentions(row, "finished"), list.output);
  CHECK_MESSAGE(mentions(row, "3/3"), list.output);
  const auto metrics = d.admin({"metrics", first});
  CHECK(metrics.exit_code == 0);
  CHECK(count_of(metrics.output, "\"kind\":\"global\"") == 4);  // rounds 0-3
  const auto model = d.dir.path() / "model.safetensors";
  const auto download = d.admin({"download", first, "--out", model.string()});
  INFO(download.output);
  REQUIRE(download.exit_code == 0);
  CHECK(read_file(model) == read_file(d.job_dir(first) / "models" / "global_round_3.safetensors"));
  CHECK(first_weight(model) == doctest::Approx(3.0f));  // each round adds 1
  // Each site's daemon ran its job in a folder of its own, with its own data folder.
  const auto site_job = d.startup("site-1").parent_path() / "workspace" / "jobs" / first;
  CHECK(mentions(read_file(site_job / "job.toml"), d.dir.path().string()));
  // The job's audit names both sites by their certificates.
  const auto audit = read_file(d.job_dir(first) / "logs" / "audit.jsonl");
  CHECK(mentions(audit, "\"identity\":\"site/site-1\""));
  CHECK(mentions(audit, "\"identity\":\"site/site-2\""));
  CHECK(mentions(read_file(d.server_workspace() / "logs" / "audit.jsonl"), "\"job_submitted\""));

  // 2. A job site-2's policy refuses (two devices): the admin sees why.
  const auto refused = d.submit("too-big", 1, "", "devices = 2", true);
  CHECK(d.last.exit_code == 1);
  auto status = d.admin({"status", refused});
  CHECK(mentions(status.output, "failed"));
  CHECK(mentions(status.output, "site-2 refused the job"));
  CHECK(mentions(status.output, "devices"));

  // 3. A slow job, aborted while it runs.
  const auto slow = d.submit("slow", 2, "slow_site = 0\nslow_ms = 60000\n");
  bool running = false;
  for (int i = 0; i < 120 && !running; ++i) {
    running = mentions(d.admin({"status", slow}).output, "running");
    if (!running) std::this_thread::sleep_for(250ms);
  }
  REQUIRE(running);
  CHECK(d.admin({"abort", slow}, "member@org.com").exit_code == 1);  // a member may not
  CHECK(d.admin({"abort", slow}).exit_code == 0);
  const auto waited = d.admin({"wait", slow, "--timeout", "60"});
  CHECK(waited.exit_code == 1);
  status = d.admin({"status", slow});
  CHECK(mentions(status.output, "aborted"));
  CHECK(mentions(status.output, "aborted by admin boss@org.com"));

  // 4. The server and both sites still serve: the next job finishes.
  d.submit("after", 1, "", "devices = 1", true);
  INFO(d.last.output);
  CHECK(d.last.exit_code == 0);

  // 5. SIGTERM stops the daemons and the server cleanly.
  for (auto& p : d.daemons) p.signal(SIGTERM);
  for (auto& p : d.daemons) {
    const auto ended = p.wait_for(30s);
    REQUIRE(ended);
    CHECK(ended->success());
  }
}

TEST_CASE("a site of two nodes takes part with a daemon per node") {
  Deployment d(2);
  // Every rank adds its rank + 1 to the model each round.
  const auto id = d.submit("two-nodes", 2, "add_rank = 1\n", "devices = 1", true,
                           "[sites.site-1]\nnodes = 2\n");
  INFO(d.last.output);
  REQUIRE(d.last.exit_code == 0);
  // Each node ran its own ranks in its own workspace.
  for (int node = 0; node < 2; ++node) {
    const auto jobs = d.dir.path() / ("site-1-node-" + std::to_string(node)) / "jobs" / id;
    CHECK_MESSAGE(fs::exists(jobs / "job.toml"), jobs);
  }
  const auto metrics = d.admin({"metrics", id});
  CHECK(count_of(metrics.output, "\"kind\":\"global\"") == 3);
  const auto model = d.dir.path() / "model.safetensors";
  REQUIRE(d.admin({"download", id, "--out", model.string()}).exit_code == 0);
  // site-1's two ranks add 1 and 2 (its group's mean 1.5, over 20 samples),
  // site-2's one rank 1 (10 samples): 4/3 a round. One node alone: 1 a round.
  CHECK(first_weight(model) == doctest::Approx(2 * 4.0 / 3));
}

TEST_CASE("a server SIGKILLed mid-job and started again resumes the job; the sites find it again") {
  Deployment d;
  // site-2 trains 700 ms a round: time to kill the server between rounds 2 and 4.
  const auto id = d.submit("resumable", 4, "slow_site = 1\nslow_ms = 700\n");
  REQUIRE(wait_for_file(d.job_dir(id) / "checkpoints" / "checkpoint_round_2.ckpt",
                        120 * kRunTimeScale));
  d.daemons.front().signal(SIGKILL);
  REQUIRE(d.daemons.front().wait_for(10s));
  // Its job process goes with it; the sites' job processes stay, looking for it.
  CHECK(all_gone_within(d.job_dir(id).string(), 10 * kRunTimeScale));
  d.daemons.emplace_back(d.server_argv, d.dir.path() / "server-2.out");
  REQUIRE(wait_for_text(d.dir.path() / "server-2.out", "listening on", 1, 60 * kRunTimeScale));

  const auto waited = d.admin({"wait", id, "--timeout", "120"});
  INFO(waited.output);
  CHECK(waited.exit_code == 0);
  const auto run = d.job_dir(id);
  const auto resumed = lines_of_kind(run, "resumed");
  REQUIRE(resumed.size() == 1);
  CHECK(resumed[0]["after_round"].get<int>() >= 2);
  // The counter trainer adds 1 a round: 4 rounds, none lost or done twice.
  CHECK(first_weight(run / "models" / "global_round_4.safetensors") == doctest::Approx(4.0f));
  // The sites registered again with the resumed job by themselves.
  CHECK(lines_of_kind(run, "site_rejoined").size() + lines_of_kind(run, "site").size() > 0);
  CHECK(mentions(read_file(run / "logs" / "server.log"), "resuming after round"));
}
