// The site daemon (flare-client --startup) as a program, against a fake
// JobDesk on loopback with mutual TLS from a provisioned project; a recorder
// script (fixtures/job_recorder.sh) stands in for the per-job client.
#include <doctest/doctest.h>

#include <csignal>
#include <deque>
#include <mutex>

#include "common/child_process.hpp"
#include "deployment_doubles.hpp"
#include "jobspec/job_spec.hpp"
#include "offered_job.hpp"
#include "transport/deploy.grpc.pb.h"

using namespace flare::testing;
namespace fs = std::filesystem;
namespace v1 = flare::deploy::v1;
using namespace std::chrono_literals;

namespace {

// Hands out the queued offers one per poll, else answers "nothing yet"
// after a short hold; records every poll and who made it.
class FakeJobDesk final : public v1::JobDesk::Service {
 public:
  void offer(const std::string& id, const std::string& toml, int port = 9100) {
    std::lock_guard lock(mutex_);
    v1::JobOffer o;
    o.set_job_id(id);
    o.set_job_toml(toml);
    o.set_port(port);
    offers_.push_back(o);
  }
  grpc::Status NextJob(grpc::ServerContext* context, const v1::JobPoll* poll,
                       v1::JobOffer* reply) override {
    {
      std::lock_guard lock(mutex_);
      polls_.push_back(*poll);
      callers_.push_back(caller_name(*context));
      if (!offers_.empty()) {
        *reply = offers_.front();
        offers_.pop_front();
        return grpc::Status::OK;
      }
    }
    std::this_thread::sleep_for(100ms);
    return grpc::Status::OK;
  }
  std::size_t polls() {
    std::lock_guard lock(mutex_);
    return polls_.size();
  }
  v1::JobPoll last_poll() {
    std::lock_guard lock(mutex_);
    return polls_.back();
  }
  std::vector<std::string> callers() {
    std::lock_guard lock(mutex_);
    return callers_;
  }

 private:
  std::mutex mutex_;
  std::deque<v1::JobOffer> offers_;
  std::vector<v1::JobPoll> polls_;
  std::vector<std::string> callers_;
};

struct Daemon {
  Daemon(const ProvisionedProject& project, const std::vector<std::string>& extra = {})
      : workspace(project.root() / "site-workspace"),
        output(project.root() / "daemon.out"),
        process(argv(project, extra), output) {}
  static std::vector<std::string> argv(const ProvisionedProject& project,
                                       const std::vector<std::string>& extra) {
    std::vector<std::string> a{FLARE_CLIENT_BIN, "--startup", project.startup("site-1").string(),
                               "--workspace", (project.root() / "site-workspace").string(),
                               "--job-program", FLARE_JOB_RECORDER};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  fs::path job(const std::string& id) const { return workspace / "jobs" / id; }
  std::string log() const { return read_bytes(output); }
  fs::path workspace, output;
  flare::common::ChildProcess process;
};

std::size_t count_of(const std::string& text, const std::string& part) {
  std::size_t n = 0;
  for (auto at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++n;
  return n;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  for (auto end = text.find('\n'); end != std::string::npos; end = text.find('\n', start)) {
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

}  // namespace

TEST_CASE("an offer starts the per-job client with the site's arguments and job.toml") {
  ProvisionedProject project;
  FakeJobDesk desk;
  TlsTestServer server(project.server_startup(), project.port(), {&desk});
  desk.offer("job-1", kOfferedJob, 9123);
  Daemon daemon(project, {"--data-dir", (project.root() / "site-data").string()});

  REQUIRE_MESSAGE(eventually([&] { return fs::exists(daemon.job("job-1") / "argv.txt"); }, 20s),
                  daemon.log());
  const auto folder = daemon.job("job-1");
  const std::vector<std::string> expected{
      "--job", (folder / "job.toml").string(), "--site", "site-1", "--server", "127.0.0.1:9123",
      "--tls-dir", project.startup("site-1").string(), "--log-dir", (folder / "logs").string(),
      "--work-dir", (folder / "work").string()};
  CHECK(lines_of(read_bytes(folder / "argv.txt")) == expected);
  const auto job = flare::jobspec::load_job(folder / "job.toml");
  CHECK(job.data_dir == project.root() / "site-data");
  CHECK(job.workspace == folder);
  CHECK(desk.callers().front() == "site-1");  // the certificate spoke, not the request

  // While it runs, every poll says so; once it has ended, none does.
  CHECK(eventually([&] { return desk.last_poll().running_jobs_size() == 1; }, 5s));
  CHECK(desk.last_poll().running_jobs(0) == "job-1");
  write_bytes(folder / "release", "");
  CHECK(eventually([&] { return desk.last_poll().running_jobs_size() == 0; }, 10s));
  CHECK(eventually([&] { return daemon.log().find("exit code 7") != std::string::npos; }, 5s));

  daemon.process.signal(SIGTERM);
  const auto status = daemon.process.wait_for(10s);
  REQUIRE(status);
  CHECK(status->describe() == "exit code 0");
}

TEST_CASE("an offer whose spec does not load is logged and not run; the next one runs") {
  ProvisionedProject project;
  FakeJobDesk desk;
  TlsTestServer server(project.server_startup(), project.port(), {&desk});
  desk.offer("bad", kBrokenJob);
  desk.offer("good", kOfferedJob);
  Daemon daemon(project);

  REQUIRE_MESSAGE(eventually([&] { return fs::exists(daemon.job("good") / "argv.txt"); }, 20s),
                  daemon.log());
  CHECK_FALSE(fs::exists(daemon.job("bad") / "argv.txt"));
  CHECK_FALSE(fs::exists(daemon.job("bad") / "job.toml"));
  const auto log = daemon.log();
  CHECK(log.find("job bad offered by the server is not run here") != std::string::npos);
  CHECK(log.find("num_rounds") != std::string::npos);
  CHECK(log.find("waits for this site until its own timeout") != std::string::npos);
}

TEST_CASE("SIGTERM stops the running job clients and the daemon exits 0") {
  ProvisionedProject project;
  FakeJobDesk desk;
  TlsTestServer server(project.server_startup(), project.port(), {&desk});
  desk.offer("job-1", kOfferedJob);
  Daemon daemon(project);
  REQUIRE_MESSAGE(eventually([&] { return fs::exists(daemon.job("job-1") / "argv.txt"); }, 20s),
                  daemon.log());

  daemon.process.signal(SIGTERM);
  const auto status = daemon.process.wait_for(15s);
  REQUIRE(status);
  CHECK(status->describe() == "exit code 0");
  CHECK(fs::exists(daemon.job("job-1") / "terminated"));  // it was asked, not killed
}

TEST_CASE("the daemon survives the server going away and coming back, saying so once") {
  ProvisionedProject project;
  FakeJobDesk first;
  auto server = std::make_unique<TlsTestServer>(project.server_startup(), project.port(),
                                                std::vector<grpc::Service*>{&first});
  Daemon daemon(project);
  REQUIRE_MESSAGE(eventually([&] { return first.polls() > 0; }, 20s), daemon.log());

  server.reset();  // gone: the daemon retries
  std::this_thread::sleep_for(2500ms);
  FakeJobDesk second;
  second.offer("after", kOfferedJob);
  server = std::make_unique<TlsTestServer>(project.server_startup(), project.port(),
                                           std::vector<grpc::Service*>{&second});
  REQUIRE_MESSAGE(eventually([&] { return fs::exists(daemon.job("after") / "argv.txt"); }, 30s),
                  daemon.log());
  const auto log = daemon.log();
  CHECK(count_of(log, "cannot be polled") == 1);
  CHECK(count_of(log, "answers again") == 1);
  daemon.process.signal(SIGTERM);
  CHECK(daemon.process.wait_for(15s));
}

TEST_CASE("a startup folder that is not a site's is refused with exit 2, naming whose it is") {
  ProvisionedProject project;
  flare::common::ChildProcess admin_folder(
      {FLARE_CLIENT_BIN, "--startup", project.startup("admin@org.com").string()},
      project.root() / "out");
  const auto status = admin_folder.wait_for(10s);
  REQUIRE(status);
  CHECK(status->describe() == "exit code 2");
  CHECK(read_bytes(project.root() / "out").find("flare://admin/admin@org.com") !=
        std::string::npos);
}
