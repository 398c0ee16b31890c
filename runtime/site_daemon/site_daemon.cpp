#include "site_daemon/site_daemon.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <csignal>
#include <iostream>
#include <map>
#include <mutex>
#include <thread>

#include <spdlog/sinks/basic_file_sink.h>

#include "common/child_process.hpp"
#include "common/local_host.hpp"
#include "common/logging.hpp"
#include "common/printable_text.hpp"
#include "deploy_client/deploy_channel.hpp"
#include "site_daemon/daemon_options.hpp"
#include "site_daemon/job_launch.hpp"
#include "transport/deploy.grpc.pb.h"

namespace flare::site_daemon {

namespace {

namespace v1 = flare::deploy::v1;
using Clock = std::chrono::steady_clock;

// The server answers a poll within a few seconds; one that holds it this long is gone.
constexpr auto kPollDeadline = std::chrono::seconds(60);
constexpr auto kFirstRetry = std::chrono::milliseconds(500);
constexpr auto kLongestRetry = std::chrono::seconds(10);
// A job's client reports to its server before it exits: give it that long.
constexpr auto kJobStopGrace = std::chrono::seconds(10);
constexpr auto kStopCheckInterval = std::chrono::milliseconds(50);

std::atomic<bool> g_stop{false};
void request_stop(int) { g_stop = true; }

// Cancels the poll in flight as soon as a stop is requested, so SIGTERM
// needs no wait for the server's answer.
class PollCanceller {
 public:
  PollCanceller() : watcher_([this] { watch(); }) {}
  ~PollCanceller() {
    {
      std::lock_guard lock(mutex_);
      done_ = true;
    }
    woken_.notify_all();
    watcher_.join();
  }
  void attach(grpc::ClientContext* call) {
    std::lock_guard lock(mutex_);
    call_ = call;
    if (g_stop) call_->TryCancel();
  }
  void detach() {
    std::lock_guard lock(mutex_);
    call_ = nullptr;
  }

 private:
  void watch() {
    std::unique_lock lock(mutex_);
    while (!done_) {
      woken_.wait_for(lock, kStopCheckInterval);
      if (g_stop && call_) call_->TryCancel();
    }
  }
  std::mutex mutex_;
  std::condition_variable woken_;
  grpc::ClientContext* call_ = nullptr;
  bool done_ = false;
  std::thread watcher_;
};

// Says once when the server becomes unreachable and once when it is back,
// not on every retry.
class Outage {
 public:
  Outage(std::string server, spdlog::logger& log) : server_(std::move(server)), log_(log) {}
  // Returns how long to wait before the next try.
  Clock::duration failed(const grpc::Status& status) {
    if (!down_) {
      down_ = true;
      since_ = Clock::now();
      log_.warn("the server at {} cannot be polled: {}; retrying every {} s at most, "
                "logged again when it answers",
                server_, deploy_client::describe_failure(status),
                std::chrono::duration_cast<std::chrono::seconds>(kLongestRetry).count());
      retry_ = kFirstRetry;
    } else {
      retry_ = std::min<Clock::duration>(retry_ * 2, kLongestRetry);
    }
    return retry_;
  }
  void answered() {
    if (down_) {
      const auto seconds =
          std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - since_).count();
      log_.info("the server at {} answers again (unreachable for {} s)", server_, seconds);
    } else if (!reached_) {
      log_.info("polling the server at {} for jobs", server_);
    }
    down_ = false;
    reached_ = true;
  }

 private:
  std::string server_;
  spdlog::logger& log_;
  bool down_ = false, reached_ = false;
  Clock::time_point since_;
  Clock::duration retry_ = kFirstRetry;
};

struct RunningJob {
  common::ChildProcess client;
  Clock::time_point started;
};

class Daemon {
 public:
  Daemon(SiteSetup setup, identity::StartupKit kit, spdlog::logger& log)
      : setup_(std::move(setup)),
        kit_(std::move(kit)),
        log_(log),
        stub_(v1::JobDesk::NewStub(deploy_client::deploy_channel(kit_))),
        outage_(deploy_client::server_address(kit_), log) {}

  void run() {
    PollCanceller canceller;
    while (!g_stop) {
      reap_finished();
      v1::JobOffer offer;
      const auto status = poll(canceller, offer);
      if (g_stop) break;
      if (!status.ok()) {
        sleep_unless_stopped(outage_.failed(status));
        // A fresh channel per try: gRPC's own reconnect state after an outage
        // (its backoff, a half-torn connection) can keep a returned server unreached.
        stub_ = v1::JobDesk::NewStub(deploy_client::deploy_channel(kit_));
        continue;
      }
      outage_.answered();
      if (!offer.job_id().empty()) start(offer);
    }
    stop_all();
  }

 private:
  grpc::Status poll(PollCanceller& canceller, v1::JobOffer& offer) {
    v1::JobPoll request;
    request.set_node_rank(setup_.node_rank.value_or(0));
    for (const auto& [id, job] : running_) request.add_running_jobs(id);
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) == 0) request.set_hostname(host);
    grpc::ClientContext call;
    call.set_deadline(std::chrono::system_clock::now() + kPollDeadline);
    canceller.attach(&call);
    auto status = stub_->NextJob(&call, request, &offer);
    canceller.detach();
    return status;
  }

  // Runs on the main thread: the job clients' parent-death signal follows
  // the thread that started them.
  void start(const v1::JobOffer& offer) {
    const std::string id = common::printable(offer.job_id());
    if (running_.count(offer.job_id())) {
      log_.warn("job {} is offered again while its client still runs: ignored", id);
      return;
    }
    try {
      if (offer.port() < 1 || offer.port() > 65535)
        throw OfferRefused("its server port " + std::to_string(offer.port()) +
                           " is not a port (1-65535)");
      auto launch = prepare_job(offer.job_id(), offer.job_toml(),
                                deploy_client::server_address(kit_, offer.port()), setup_);
      common::ChildProcess client(launch.argv, launch.log_file);
      log_.info("job {} started: its client (pid {}) reaches its server at {}; folder {}, log {}",
                id, client.pid(), deploy_client::server_address(kit_, offer.port()),
                launch.folder.string(), launch.log_file.string());
      running_.emplace(offer.job_id(), RunningJob{std::move(client), Clock::now()});
    } catch (const std::exception& e) {
      log_.error("job {} offered by the server is not run here: {}. The job's server waits "
                 "for this site until its own timeout, then fails the job",
                 id, e.what());
    }
  }

  void reap_finished() {
    for (auto it = running_.begin(); it != running_.end();) {
      if (const auto status = it->second.client.poll()) {
        log_.info("job {} ended after {} s (its client: {})",
                  common::printable(it->first), seconds_since(it->second.started),
                  status->describe());
        it = running_.erase(it);
      } else {
        ++it;
      }
    }
  }

  void stop_all() {
    reap_finished();
    if (running_.empty()) return;
    log_.info("stopping the clients of {} running job(s) (SIGTERM, SIGKILL after {} s)",
              running_.size(),
              std::chrono::duration_cast<std::chrono::seconds>(kJobStopGrace).count());
    std::vector<common::ChildProcess*> clients;
    for (auto& [id, job] : running_) clients.push_back(&job.client);
    common::stop_together(clients, kJobStopGrace);
    reap_finished();
  }

  void sleep_unless_stopped(Clock::duration wait) {
    const auto until = Clock::now() + wait;
    while (!g_stop && Clock::now() < until) {
      std::this_thread::sleep_for(kStopCheckInterval);
    }
    reap_finished();
  }

  static long seconds_since(Clock::time_point start) {
    return static_cast<long>(
        std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - start).count());
  }

  SiteSetup setup_;
  identity::StartupKit kit_;
  spdlog::logger& log_;
  std::unique_ptr<v1::JobDesk::Stub> stub_;
  Outage outage_;
  std::map<std::string, RunningJob> running_;
};

// stderr (which start.sh or a service manager keeps) and <workspace>/logs/flare-client.log.
std::shared_ptr<spdlog::logger> daemon_logger(const std::string& site,
                                              const std::filesystem::path& workspace) {
  auto log = common::make_logger("site-daemon", site);
  const auto logs = workspace / "logs";
  std::filesystem::create_directories(logs);
  log->sinks().push_back(
      std::make_shared<spdlog::sinks::basic_file_sink_mt>((logs / "flare-client.log").string()));
  log->set_pattern("%Y-%m-%d %H:%M:%S.%e %l [" + site + "] %v");
  return log;
}

}  // namespace

int run_site_daemon(int argc, char** argv) {
  umask(077);  // the jobs' folders, specs and logs are the site's alone
  DaemonOptions options;
  identity::StartupKit kit;
  try {
    options = parse_daemon_options(argc, argv);
    kit = deploy_client::load_kit_for(options.startup, identity::Role::site, "flare-client");
  } catch (const std::exception& e) {
    std::cerr << "flare-client: " << e.what() << "\n";
    return 2;
  }
  const auto setup = site_setup(options, kit.identity().name);
  std::shared_ptr<spdlog::logger> log;
  try {
    log = daemon_logger(setup.site, setup.workspace);
  } catch (const std::exception& e) {
    std::cerr << "flare-client: cannot write the workspace " << setup.workspace << ": "
              << e.what() << "\n";
    return 2;
  }
  std::signal(SIGTERM, request_stop);
  std::signal(SIGINT, request_stop);
  log->info("site {} of project {} started: workspace {}, jobs run by {}", setup.site,
            kit.config.project, setup.workspace.string(), setup.job_program.string());
  Daemon(setup, std::move(kit), *log).run();
  log->info("stopped on request");
  return 0;
}

}  // namespace flare::site_daemon
