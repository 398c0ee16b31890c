// The job runner with a stand-in for `flare-server --run-job` (a shell
// script): what it starts, how an abort reaches the job, and how an end
// without an outcome is recorded.
#include <doctest/doctest.h>

#include <fstream>
#include <thread>

#include <spdlog/sinks/null_sink.h>

#include "deploy/job_folder.hpp"
#include "deploy/job_runner.hpp"
#include "temp_folder.hpp"

using namespace flare;
using namespace std::chrono_literals;

namespace {

// Records its arguments; then, as $FAKE_JOB says: "finish" writes a finished
// outcome, "crash" exits 3 with none, "crash-on-term" dies of SIGTERM with
// none, "wait" waits for SIGTERM and writes an aborted outcome with the
// reason the runner left.
constexpr const char* kFakeJobServer = R"sh(#!/bin/sh
dir="$2"
echo "$@" > "$dir/argv"
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

struct Runner {
  testing::TempFolder dir;
  std::filesystem::path program = dir.path() / "fake-flare-server";
  deploy::JobTable table;
  std::shared_ptr<spdlog::logger> log =
      std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>());
  std::unique_ptr<deploy::JobRunner> runner;

  Runner() {
    std::ofstream(program) << kFakeJobServer;
    std::filesystem::permissions(program, std::filesystem::perms::owner_all);
    runner = std::make_unique<deploy::JobRunner>(
        table,
        deploy::RunnerSettings{.server_program = program,
                               .jobs_dir = dir.path() / "jobs",
                               .startup_dir = dir.path() / "startup",
                               .listen_host = "127.0.0.1",
                               .first_port = 0,  // any free port: the kernel's
                               .last_port = 0,
                               .server = {.plugin_path = {"/opt/plugins"}}},
        *log);
  }
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
