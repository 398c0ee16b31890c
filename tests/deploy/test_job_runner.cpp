// The job runner with a stand-in for `flare-server --run-job` (a shell
// script): what it starts, how an abort reaches the job, how an end
// without an outcome is recorded, and how a restarted server resumes a job
// its stop cut off.
#include <doctest/doctest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <fstream>
#include <thread>

#include <spdlog/sinks/null_sink.h>

#include "checkpoint/round_checkpoint.hpp"
#include "deploy/job_folder.hpp"
#include "deploy/job_runner.hpp"
#include "temp_folder.hpp"

using namespace flare;
using namespace std::chrono_literals;

namespace {

// Records its arguments; then, as $FAKE_JOB says: "finish" writes a finished
// outcome, "crash" exits 3 with none, "crash-on-term" dies of SIGTERM with
// none, "wait" waits for SIGTERM and writes an aborted outcome with the
// reason the runner left. Its pid is in "pid" (a test kills it as a killed
// server's job process dies).
constexpr const char* kFakeJobServer = R"sh(#!/bin/sh
dir="$2"
echo "$@" > "$dir/argv"
echo $$ > "$dir/pid"
case "$(cat "$dir/behaviour")" in
  finish) echo '{"state": "finished", "failure": ""}' > "$dir/outcome.json" ;;
  crash) exit 3 ;;
  crash-on-term) while true; do sleep 0.05; done ;;
  wait)
    trap 'printf "{\"state\": \"aborted\", \"failure\": \"%s (recorded)\"}" "$(cat "$dir/abort_reason.txt")" > "$dir/outcome.json"; exit 1' TERM
    touch "$dir/ready"
    while true; do sleep 0.05; done ;;
esac
)sh";

// A port nothing listens on now (the kernel's choice).
int unused_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

struct Runner {
  testing::TempFolder dir;
  std::filesystem::path program = dir.path() / "fake-flare-server";
  int port;  // the job-port range's only port; 0: any free port, the kernel's
  deploy::JobTable table;
  std::shared_ptr<spdlog::logger> log =
      std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>());
  std::unique_ptr<deploy::JobRunner> runner;

  explicit Runner(int job_port = 0) : port(job_port) {
    std::ofstream(program) << kFakeJobServer;
    std::filesystem::permissions(program, std::filesystem::perms::owner_all);
    runner = std::make_unique<deploy::JobRunner>(table, settings(), *log);
  }
  deploy::RunnerSettings settings() const {
    return {.server_program = program,
            .jobs_dir = dir.path() / "jobs",
            .startup_dir = dir.path() / "startup",
            .listen_host = "127.0.0.1",
            .first_port = port,
            .last_port = port,
            .server = {.plugin_path = {"/opt/plugins"}}};
  }
  std::filesystem::path folder(const std::string& id) const { return dir.path() / "jobs" / id; }
  // Queues a job on site "a" whose stand-in behaves as `behaviour`.
  std::string queue(const std::string& behaviour) {
    deploy::JobRecord job;
    job.id = table.reserve_id();
    job.name = behaviour;
    job.sites = {"a"};
    job.nodes = {{"a", 1}};
    deploy::create_job_folder(deploy::JobFolder(dir.path() / "jobs" / job.id), job);
    std::ofstream(dir.path() / "jobs" / job.id / "behaviour") << behaviour;
    table.add(job);
    table.poll("a", 0, {}, 0ms);  // site a is online and idle
    return job.id;
  }
  // Ticks until the stand-in of job `id` has set up its SIGTERM trap (bounded).
  bool started(const std::string& id) {
    for (int i = 0; i < 200; ++i) {
      runner->tick();
      if (std::filesystem::exists(dir.path() / "jobs" / id / "ready")) return true;
      std::this_thread::sleep_for(25ms);
    }
    return false;
  }
  // Ticks until the job has ended (bounded).
  deploy::JobRecord run_until_ended(const std::string& id) {
    for (int i = 0; i < 200 && !table.find(id)->ended(); ++i) {
      runner->tick();
      std::this_thread::sleep_for(25ms);
    }
    return *table.find(id);
  }
};

}  // namespace

TEST_CASE("a job's server process is started with its folder, the startup folder and a port") {
  Runner r;
  const auto id = r.queue("finish");
  const auto job = r.run_until_ended(id);
  CHECK(job.state == deploy::JobState::finished);
  std::ifstream in(r.dir.path() / "jobs" / id / "argv");
  std::string argv;
  std::getline(in, argv);
  CHECK(argv == "--run-job " + (r.dir.path() / "jobs" / id).string() + " --startup " +
                    (r.dir.path() / "startup").string() + " --listen 127.0.0.1 --port " +
                    std::to_string(job.port) + " --plugin-path /opt/plugins");
}

TEST_CASE("a job process that dies without an outcome is recorded failed, naming its log") {
  Runner r;
  const auto id = r.queue("crash");
  const auto job = r.run_until_ended(id);
  CHECK(job.state == deploy::JobState::failed);
  CHECK(job.failure.find("ended (exit code 3) without recording an outcome") != std::string::npos);
  CHECK(job.failure.find("job-server.log") != std::string::npos);
  CHECK(r.runner->running() == 0);
}

TEST_CASE("an admin's abort reaches the job process with its reason") {
  Runner r;
  const auto id = r.queue("wait");
  REQUIRE(r.started(id));
  REQUIRE(r.table.find(id)->state == deploy::JobState::running);
  std::string why;
  REQUIRE(r.table.request_abort(id, "aborted by admin boss@org.com", why));
  const auto job = r.run_until_ended(id);
  CHECK(job.state == deploy::JobState::aborted);
  CHECK(job.failure == "aborted by admin boss@org.com (recorded)");  // the job's own outcome
}

TEST_CASE("a job process stopped before it recorded anything still reads as aborted") {
  Runner r;
  const auto id = r.queue("crash-on-term");
  r.runner->tick();
  std::string why;
  REQUIRE(r.table.request_abort(id, "aborted by admin boss@org.com", why));
  const auto job = r.run_until_ended(id);
  CHECK(job.state == deploy::JobState::aborted);
  CHECK(job.failure == "aborted by admin boss@org.com");
}

TEST_CASE("stopping the server aborts every running job and reaps it") {
  Runner r;
  const auto id = r.queue("wait");
  REQUIRE(r.started(id));
  REQUIRE(r.runner->running() == 1);
  r.runner->stop_all("the server is stopping", 5s);
  CHECK(r.runner->running() == 0);
  CHECK(r.table.find(id)->state == deploy::JobState::aborted);
  CHECK(r.table.find(id)->failure == "the server is stopping (recorded)");
}

TEST_CASE("a job's port is recorded in its folder when it first starts") {
  Runner r(unused_port());
  const auto id = r.queue("wait");
  REQUIRE(r.started(id));
  CHECK(r.table.find(id)->port == r.port);
  CHECK(deploy::read_port(deploy::JobFolder(r.folder(id))) == r.port);
}

TEST_CASE("a restarted server starts the job its stop cut off again, with --resume on its old port") {
  Runner r(unused_port());
  const auto id = r.queue("wait");
  REQUIRE(r.started(id));
  // The server is killed: its job process dies with it (parent-death signal)
  // and leaves no outcome, only the checkpoint of its last round.
  const deploy::JobFolder folder(r.folder(id));
  flare::checkpoint::RoundCheckpoint checkpoint;
  checkpoint.round = 2;
  checkpoint.rng_state = "rng";
  flare::checkpoint::write_checkpoint(folder.checkpoint_dir(), checkpoint);
  pid_t pid = 0;
  std::ifstream(r.folder(id) / "pid") >> pid;
  REQUIRE(pid > 0);
  ::kill(pid, SIGKILL);
  while (r.runner->running() > 0) {
    r.runner->tick();  // reaped: the old table is gone with the old server
    std::this_thread::sleep_for(25ms);
  }
  REQUIRE_FALSE(std::filesystem::exists(folder.outcome_file()));
  // A restart reads the job back from its job.toml (the stand-in's has none).
  std::ofstream(folder.job_file()) << "[job]\nname = 'cut-off'\n[clients]\ncount = 1\n"
                                      "[data]\ndir = '/data'\n[trainer]\nplugin = 'cifar10'\n";
  std::filesystem::remove(r.folder(id) / "ready");

  // The restart, as flare-server's start-up does it.
  deploy::JobTable table;
  int64_t next_id = 0;
  for (auto& job : deploy::read_jobs(r.dir.path() / "jobs", next_id)) table.restore(job);
  // On another range: the old port is the job's, wherever the range went.
  auto settings = r.settings();
  settings.first_port = settings.last_port = unused_port();
  deploy::JobRunner restarted(table, settings, *r.log);
  for (const auto& job : table.list())
    if (job.state == deploy::JobState::running) restarted.resume(job);

  REQUIRE(restarted.running() == 1);
  for (int i = 0; i < 200 && !std::filesystem::exists(r.folder(id) / "ready"); ++i)
    std::this_thread::sleep_for(25ms);
  std::string argv;
  std::getline(std::ifstream(r.folder(id) / "argv"), argv);
  CHECK(argv == "--run-job " + r.folder(id).string() + " --startup " +
                    (r.dir.path() / "startup").string() + " --listen 127.0.0.1 --port " +
                    std::to_string(r.port) + " --plugin-path /opt/plugins --resume");
  const auto job = *table.find(id);
  CHECK(job.state == deploy::JobState::running);
  CHECK(job.port == r.port);
  CHECK(job.resumed_after_round == 2);
  CHECK(deploy::read_port(folder) == r.port);  // still the first one
}
