// The controller's side of a worker-group restart: a restarted site gets its
// unanswered task again with the current global model, an earlier
// generation's requests are refused, and an update counts once per round.
#include <doctest/doctest.h>

#include <cstring>
#include <sstream>

#include <spdlog/sinks/null_sink.h>

#include "plugin_host/plugin_loader.hpp"
#include "server/controller.hpp"
#include "temp_folder.hpp"
#include "transport/tensor_codec.hpp"

using namespace flare;
namespace v1 = flare::transport::v1;
using namespace std::chrono_literals;

namespace {

// A two-site, two-round job on the fedavg plugin, driven by calling the
// controller as the sites' RPCs would.
struct TwoSiteJob {
  testing::TempFolder dir;
  host::HostServices services;
  host::AggregatorInstance aggregator{
      host::load_plugin({"fedavg", FLARE_FEDAVG_PLUGIN, {}}, FLARE_PLUGIN_AGGREGATOR), "{}",
      services};
  server::ModelStore models{dir.path() / "models"};
  storage::MetricsLog metrics{dir.path() / "metrics.jsonl"};
  std::ostringstream screen;
  server::ProgressDisplay display{screen, false, 2};
  std::shared_ptr<spdlog::logger> log = std::make_shared<spdlog::logger>(
      "server", std::make_shared<spdlog::sinks::null_sink_mt>());
  server::Controller controller{{.sites = {"a", "b"}, .num_rounds = 2},
                                {aggregator, models, metrics, display, log}};

  void join(const std::string& site, int64_t generation = 0) {
    v1::RegisterRequest r;
    r.set_site(site);
    r.set_world_size(2);
    r.set_generation(generation);
    controller.register_site(r);
  }
  v1::Task task(const std::string& site, int64_t generation = 0) {
    v1::TaskRequest r;
    r.set_site(site);
    r.set_generation(generation);
    return controller.next_task(r, 0ms);
  }
  static void put_weight(v1::Model* model, float w) {
    std::vector<tensor::OwnedTensor> t{{"w", {kDLFloat, 32, 1}, {1}, {}}};
    t[0].data.resize(sizeof(float));
    std::memcpy(t[0].data.data(), &w, sizeof(float));
    transport::encode_tensors(tensor::views_of(t), model->mutable_weights());
  }
  static float weight_of(const v1::Task& task) {
    const auto t = transport::decode_tensors(task.model().weights());
    float w = 0;
    std::memcpy(&w, t.at(0).data.data(), sizeof(float));
    return w;
  }
  void send_update(const std::string& site, int64_t round, float w, int64_t generation = 0) {
    v1::Update u;
    u.set_site(site);
    u.set_round(round);
    u.set_generation(generation);
    u.set_num_samples(10);
    u.set_num_steps(1);
    put_weight(u.mutable_model(), w);
    controller.accept_update(u);
  }
  void report_restart(const std::string& site, int64_t failed_generation) {
    v1::Failure f;
    f.set_site(site);
    f.set_rank(1);
    f.set_cause("killed by signal 9 (SIGKILL)");
    f.set_generation(failed_generation);
    f.set_restarting(true);
    controller.failure(f);
  }
  // Both sites joined, the initial model (w = 0) is in, round 1 is under way.
  void start() {
    join("a");
    join("b");
    REQUIRE(task("a").kind() == v1::Task::SEND_INITIAL_MODEL);
    v1::InitialModel m;
    m.set_site("a");
    put_weight(m.mutable_model(), 0);
    controller.accept_initial_model(m);
  }
};

}  // namespace

TEST_CASE("a restarted site is handed its unanswered round again with the current global model") {
  TwoSiteJob job;
  job.start();
  REQUIRE(job.task("a").kind() == v1::Task::TRAIN);
  job.report_restart("a", 0);
  job.join("a", 1);
  const auto again = job.task("a", 1);
  CHECK(again.kind() == v1::Task::TRAIN);
  CHECK(again.round() == 0);
  CHECK(TwoSiteJob::weight_of(again) == 0);
}

TEST_CASE("an update from the worker group that was restarted is refused, the new one's counts") {
  TwoSiteJob job;
  job.start();
  REQUIRE(job.task("a").kind() == v1::Task::TRAIN);
  REQUIRE(job.task("b").kind() == v1::Task::TRAIN);
  job.report_restart("a", 0);
  CHECK_THROWS_AS(job.send_update("a", 0, 7), server::RejectedRequest);
  job.join("a", 1);
  REQUIRE(job.task("a", 1).kind() == v1::Task::TRAIN);
  job.send_update("a", 0, 1, 1);
  job.send_update("b", 0, 3);
  // Round 2 starts from the mean of the two counted updates.
  const auto next = job.task("a", 1);
  CHECK(next.round() == 1);
  CHECK(TwoSiteJob::weight_of(next) == doctest::Approx(2));
}

TEST_CASE("a site whose update already counted waits for the next round after a restart") {
  TwoSiteJob job;
  job.start();
  REQUIRE(job.task("a").kind() == v1::Task::TRAIN);
  REQUIRE(job.task("b").kind() == v1::Task::TRAIN);
  job.send_update("a", 0, 1);
  job.report_restart("a", 0);
  job.join("a", 1);
  CHECK(job.task("a", 1).kind() == v1::Task::WAIT);
  CHECK_THROWS_AS(job.send_update("a", 0, 1, 1), server::RejectedRequest);
  job.send_update("b", 0, 1);
  CHECK(job.task("a", 1).round() == 1);
}

TEST_CASE("a task request from the earlier generation is refused after a restart") {
  TwoSiteJob job;
  job.start();
  job.report_restart("a", 0);
  CHECK_THROWS_AS(job.task("a", 0), server::RejectedRequest);
  CHECK_THROWS_AS(job.join("a", 0), server::RejectedRequest);
}

TEST_CASE("a restart reported after the job ended is refused so the site stops") {
  TwoSiteJob job;
  job.start();
  job.controller.abort("stopped by the test");
  CHECK_THROWS_AS(job.report_restart("a", 0), server::RejectedRequest);
}

TEST_CASE("a collective failure waits briefly for its cause to be reported from another node") {
  TwoSiteJob job;
  job.start();
  v1::Failure consequence;
  consequence.set_site("a");
  consequence.set_rank(0);
  consequence.set_cause("exit code 1: all_reduce failed");
  consequence.set_in_collective(true);
  job.controller.failure(consequence);
  v1::Failure cause = consequence;
  cause.set_rank(3);
  cause.set_cause("killed by signal 9 (SIGKILL)");
  cause.set_in_collective(false);
  job.controller.failure(cause);
  const auto outcome = job.controller.run([] {});
  CHECK_FALSE(outcome.success);
  CHECK_MESSAGE(outcome.failure.find("a worker rank 3 failed: killed by signal 9") == 0,
                outcome.failure);
}

TEST_CASE("a collective failure with no other report fails the job on its own") {
  TwoSiteJob job;
  job.start();
  v1::Failure consequence;
  consequence.set_site("a");
  consequence.set_rank(0);
  consequence.set_cause("exit code 1: all_reduce failed");
  consequence.set_in_collective(true);
  job.controller.failure(consequence);
  const auto outcome = job.controller.run([] {});
  CHECK_FALSE(outcome.success);
  CHECK_MESSAGE(outcome.failure.find("all_reduce failed") != std::string::npos, outcome.failure);
}

TEST_CASE("every node of a site reporting one failure restarts the site once, never failing it") {
  TwoSiteJob job;
  job.start();
  REQUIRE(job.task("a").kind() == v1::Task::TRAIN);
  job.report_restart("a", 0);  // node 1: its rank was killed
  // Node 0's rank 0 broke in a collective with it: the same failure, late.
  v1::Failure late;
  late.set_site("a");
  late.set_rank(0);
  late.set_node_rank(0);
  late.set_cause("exit code 1: all_reduce failed");
  late.set_in_collective(true);
  late.set_generation(0);
  late.set_restarting(true);
  CHECK_NOTHROW(job.controller.failure(late));
  // Not even a report of the same failure that gives up ends the job.
  late.set_restarting(false);
  late.set_in_collective(false);
  CHECK_NOTHROW(job.controller.failure(late));
  // Generation 1 (not 2) is the one that runs.
  job.join("a", 1);
  const auto again = job.task("a", 1);
  CHECK(again.kind() == v1::Task::TRAIN);
  CHECK(again.round() == 0);
  CHECK_THROWS_AS(job.task("a", 2), server::RejectedRequest);
  const std::string screen = job.screen.str();
  const auto restart = screen.find("restarting its worker group");
  CHECK(restart != std::string::npos);
  CHECK(screen.find("restarting its worker group", restart + 1) == std::string::npos);
}
