// The controller's side of a worker-group restart: a restarted site gets its
// unanswered task again with the current global model, an earlier
// generation's requests are refused, and an update counts once per round.
#include <doctest/doctest.h>

#include "controller_job.hpp"

using namespace flare;
using server::TaskKind;

namespace {

// A two-site, two-round job.
struct TwoSiteJob : testing::ControllerJob {
  TwoSiteJob() : ControllerJob({"a", "b"}, 2) {}
  void start() { ControllerJob::start({"a", "b"}); }
};

}  // namespace

TEST_CASE("a restarted site is handed its unanswered round again with the current global model") {
  TwoSiteJob job;
  job.start();
  REQUIRE(job.task("a").kind == TaskKind::Train);
  job.report_restart("a", 0);
  REQUIRE(job.join("a") == 1);
  const auto again = job.task("a", 1);
  CHECK(again.kind == TaskKind::Train);
  CHECK(again.round == 0);
  CHECK(TwoSiteJob::weight_of(again) == 0);
}

TEST_CASE("an update from the worker group that was restarted is refused, the new one's counts") {
  TwoSiteJob job;
  job.start();
  REQUIRE(job.task("a").kind == TaskKind::Train);
  REQUIRE(job.task("b").kind == TaskKind::Train);
  job.report_restart("a", 0);
  CHECK_THROWS_AS(job.send_update("a", 0, 7), server::RejectedRequest);
  REQUIRE(job.join("a") == 1);
  REQUIRE(job.task("a", 1).kind == TaskKind::Train);
  job.send_update("a", 0, 1, 1);
  job.send_update("b", 0, 3);
  // Round 2 starts from the mean of the two counted updates.
  const auto next = job.task("a", 1);
  CHECK(next.round == 1);
  CHECK(TwoSiteJob::weight_of(next) == doctest::Approx(2));
}

TEST_CASE("an upload cut short by a restart and still open when the round ends counts for nothing") {
  TwoSiteJob job;
  job.start();
  REQUIRE(job.task("a").kind == TaskKind::Train);
  REQUIRE(job.task("b").kind == TaskKind::Train);
  // Generation 0 of a begins its upload: its first piece is folded in.
  auto header = TwoSiteJob::update("a", 0, 0);
  header.weights.clear();
  header.num_weights = 1;
  auto stale = job.controller.open_update(header);
  const float hundred = 100;
  stale->begin_tensor(0, {.name = "w", .dtype = {kDLFloat, 32, 1}, .shape = {1},
                          .num_elements = 1, .element_bytes = sizeof(float)});
  stale->piece(0, 0, 1, reinterpret_cast<const std::byte*>(&hundred));
  // a is restarted; its new generation's update and b's complete the round
  // while the old upload is still open.
  job.report_restart("a", 0);
  REQUIRE(job.join("a") == 1);
  REQUIRE(job.task("a", 1).kind == TaskKind::Train);
  job.send_update("a", 0, 1, 1);
  job.send_update("b", 0, 3);
  const auto next = job.task("a", 1);
  CHECK(next.round == 1);
  CHECK(TwoSiteJob::weight_of(next) == doctest::Approx(2));  // nothing of the 100
  // The old upload's next piece and its commit are refused; closing it takes
  // nothing back twice from the next round.
  CHECK_THROWS_AS(stale->piece(0, 0, 1, reinterpret_cast<const std::byte*>(&hundred)),
                  server::RejectedRequest);
  CHECK_THROWS_AS(job.controller.commit_update(*stale), server::RejectedRequest);
  stale.reset();
  REQUIRE(job.task("b").kind == TaskKind::Train);
  job.send_update("a", 1, 5, 1);
  job.send_update("b", 1, 7);
  CHECK(TwoSiteJob::weight_of(job.task("b")) == doctest::Approx(6));
}

TEST_CASE("a site whose update already counted waits for the next round after a restart") {
  TwoSiteJob job;
  job.start();
  REQUIRE(job.task("a").kind == TaskKind::Train);
  REQUIRE(job.task("b").kind == TaskKind::Train);
  job.send_update("a", 0, 1);
  job.report_restart("a", 0);
  REQUIRE(job.join("a") == 1);
  CHECK(job.task("a", 1).kind == TaskKind::Wait);
  CHECK_THROWS_AS(job.send_update("a", 0, 1, 1), server::RejectedRequest);
  job.send_update("b", 0, 1);
  CHECK(job.task("a", 1).round == 1);
}

TEST_CASE("a task request from the earlier generation is refused after a restart") {
  TwoSiteJob job;
  job.start();
  job.report_restart("a", 0);
  CHECK_THROWS_AS(job.task("a", 0), server::RejectedRequest);
  CHECK(job.join("a") == 1);  // the restarted group registers as the next generation
  CHECK_THROWS_AS(job.task("a", 0), server::RejectedRequest);
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
  const server::RankFailure consequence{
      .site = "a", .rank = 0, .cause = "exit code 1: all_reduce failed", .in_collective = true};
  job.controller.failure(consequence);
  server::RankFailure cause = consequence;
  cause.rank = 3;
  cause.cause = "killed by signal 9 (SIGKILL)";
  cause.in_collective = false;
  job.controller.failure(cause);
  const auto outcome = job.controller.run([] {});
  CHECK_FALSE(outcome.success);
  // The cause, not its consequence, is why a left (and with it the job).
  CHECK_MESSAGE(outcome.failure.find("; a: a worker rank 3 failed: killed by signal 9") !=
                    std::string::npos,
                outcome.failure);
  CHECK(outcome.failure.find("all_reduce") == std::string::npos);
}

TEST_CASE("a collective failure with no other report fails the job on its own") {
  TwoSiteJob job;
  job.start();
  job.controller.failure(
      {.site = "a", .rank = 0, .cause = "exit code 1: all_reduce failed", .in_collective = true});
  const auto outcome = job.controller.run([] {});
  CHECK_FALSE(outcome.success);
  CHECK_MESSAGE(outcome.failure.find("all_reduce failed") != std::string::npos, outcome.failure);
}

TEST_CASE("every node of a site reporting one failure restarts the site once, never failing it") {
  TwoSiteJob job;
  job.start();
  REQUIRE(job.task("a").kind == TaskKind::Train);
  job.report_restart("a", 0);  // node 1: its rank was killed
  // Node 0's rank 0 broke in a collective with it: the same failure, late.
  server::RankFailure late{.site = "a",
                           .rank = 0,
                           .cause = "exit code 1: all_reduce failed",
                           .generation = 0,
                           .restarting = true,
                           .node_rank = 0,
                           .in_collective = true};
  CHECK_NOTHROW(job.controller.failure(late));
  // Not even a report of the same failure that gives up ends the job.
  late.restarting = false;
  late.in_collective = false;
  CHECK_NOTHROW(job.controller.failure(late));
  // Generation 1 (not 2) is the one that runs.
  REQUIRE(job.join("a") == 1);
  const auto again = job.task("a", 1);
  CHECK(again.kind == TaskKind::Train);
  CHECK(again.round == 0);
  CHECK_THROWS_AS(job.task("a", 2), server::RejectedRequest);
  const std::string screen = job.screen.str();
  const auto restart = screen.find("restarting its worker group");
  CHECK(restart != std::string::npos);
  CHECK(screen.find("restarting its worker group", restart + 1) == std::string::npos);
}
