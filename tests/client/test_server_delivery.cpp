// The supervisor's failure reports reach a server that restarts: a report
// sent while the server is down goes through once it is back, within the
// reconnect window; past the window, or refused, it fails saying so.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <sstream>
#include <thread>

#include <grpcpp/grpcpp.h>
#include <spdlog/sinks/ostream_sink.h>

#include "client/server_delivery.hpp"
#include "common/local_host.hpp"

using namespace flare;
using namespace std::chrono_literals;
namespace v1 = transport::v1;

namespace {

class FailureDesk final : public v1::FlareServer::Service {
 public:
  explicit FailureDesk(bool accept) : accept_(accept) {}
  grpc::Status ReportFailure(grpc::ServerContext*, const v1::Failure*, v1::Ack* ack) override {
    ++reports;
    ack->set_accepted(accept_);
    if (!accept_) ack->set_message("the job already ended");
    return grpc::Status::OK;
  }
  std::atomic<int> reports{0};

 private:
  bool accept_;
};

struct Desk {
  FailureDesk service;
  std::unique_ptr<grpc::Server> server;
  Desk(int port, bool accept) : service(accept) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:" + std::to_string(port),
                             grpc::InsecureServerCredentials());
    builder.RegisterService(&service);
    server = builder.BuildAndStart();
    REQUIRE(server);
  }
  ~Desk() { server->Shutdown(std::chrono::system_clock::now() + 100ms); }
};

struct Supervisor {
  std::ostringstream logged;
  spdlog::logger log{"client", std::make_shared<spdlog::sinks::ostream_sink_mt>(logged)};
  transport::ServerConnection server;
  explicit Supervisor(int port) : server("127.0.0.1:" + std::to_string(port), "site-1", 2s) {}
  void report(std::chrono::milliseconds window) {
    v1::Failure failure;
    failure.set_cause("rank 1 exited with code 3");
    client::deliver_within(server, window, [&] { server.report_failure(failure); }, log);
  }
};

}  // namespace

TEST_CASE("a failure report sent while the server restarts reaches it once it is back") {
  const int port = common::free_tcp_port();
  Supervisor supervisor(port);
  auto reporting = std::async(std::launch::async, [&] { supervisor.report(20s); });
  std::this_thread::sleep_for(1s);  // the report found no server...
  Desk desk(port, true);            // ...which then comes back
  REQUIRE(reporting.wait_for(20s) == std::future_status::ready);
  reporting.get();
  CHECK(desk.service.reports == 1);
  supervisor.log.flush();
  CHECK(supervisor.logged.str().find("trying again for up to 20 s (server.reconnect_timeout_s)") !=
        std::string::npos);
}

TEST_CASE("a server gone past the reconnect window fails the report, naming the window") {
  Supervisor supervisor(common::free_tcp_port());
  const auto started = std::chrono::steady_clock::now();
  try {
    supervisor.report(1500ms);
    FAIL("expected the report to fail");
  } catch (const transport::ServerUnreachableError& e) {
    CHECK(std::string(e.what()).find("gave up after trying again for 1.5 s "
                                     "(server.reconnect_timeout_s)") != std::string::npos);
  }
  CHECK(std::chrono::steady_clock::now() - started < 10s);
}

TEST_CASE("a report the server refuses is not sent again") {
  const int port = common::free_tcp_port();
  Desk desk(port, false);
  Supervisor supervisor(port);
  CHECK_THROWS_WITH_AS(supervisor.report(20s), doctest::Contains("the job already ended"),
                       transport::TransportError);
  CHECK(desk.service.reports == 1);
}
