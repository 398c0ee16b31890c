// Rounds that go on without some sites: a seeded sample per round, closing at
// min_clients results and the deadline, stragglers' late results refused,
// sites dropped (silent, gone, failed) and rejoining, the job ending as soon
// as min_clients can no longer answer, and a job resumed from its checkpoint
// going on exactly as the uninterrupted one.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <optional>
#include <thread>

#include "checkpoint/round_checkpoint.hpp"
#include "controller_job.hpp"
#include "storage/safetensors.hpp"

using namespace flare;
using server::TaskKind;
using testing::ControllerJob;
using namespace std::chrono_literals;

namespace {

// The events by name, and each round's sample and each drop's reason.
struct Events final : server::JobEvents {
  std::mutex mutex;
  std::vector<std::string> seen;
  std::vector<std::vector<std::string>> sampled;
  std::vector<std::string> drops;

  void note(std::string line) {
    std::lock_guard lock(mutex);
    seen.push_back(std::move(line));
  }
  bool saw(const std::string& line) {
    std::lock_guard lock(mutex);
    return std::find(seen.begin(), seen.end(), line) != seen.end();
  }
  void site_joined(const server::SiteJoin& j, int64_t generation, bool rejoined) override {
    note((rejoined ? "rejoined " : "joined ") + j.site + " " + std::to_string(generation));
  }
  void initial_model_received(const std::string&, const server::GlobalModel&) override {}
  void round_started(int64_t round, const std::vector<std::string>& sites) override {
    note("round " + std::to_string(round) + " started");
    std::lock_guard lock(mutex);
    sampled.push_back(sites);
  }
  void site_dropped(const std::string& site, int64_t round, const std::string& reason) override {
    note(site + " dropped from round " + std::to_string(round));
    std::lock_guard lock(mutex);
    drops.push_back(reason);
  }
  void round_closed_without(int64_t round, const std::vector<std::string>& sites) override {
    std::string names;
    for (const auto& s : sites) names += " " + s;
    note("round " + std::to_string(round) + " closed without" + names);
  }
  void late_result_refused(const std::string& site, int64_t round) override {
    note("late result from " + site + " for round " + std::to_string(round));
  }
  void job_resumed(int64_t round, const std::filesystem::path&,
                   const std::vector<std::string>&) override {
    note("resumed after round " + std::to_string(round));
  }
  void site_trained(const server::SiteUpdate& u) override {
    note(u.site + " trained round " + std::to_string(u.round));
  }
  void round_aggregated(const server::GlobalModel& m, const std::filesystem::path&,
                        const nlohmann::json&) override {
    note("model " + std::to_string(m.model_round()) + " aggregated");
  }
  void final_evaluation_started() override { note("final evaluation"); }
  void model_measured(const server::RoundFigures&, const std::filesystem::path&) override {}
  void key_metric_missing(const std::string&, const std::vector<std::string>&) override {}
  void site_progress(const server::SiteProgress&) override {}
  void site_metrics(const server::SiteMetrics&) override {}
  void rank_failed(const server::RankFailure&, server::FailureHandling) override {}
  void site_refused(const server::SiteRefusal&) override {}
  void aggregator_failed(const server::AggregatorFailure&) override {}
  void job_failed(const std::string&) override { note("job failed"); }
  void job_finished() override { note("job finished"); }
};

server::ControllerSettings settings(std::vector<std::string> sites, int num_rounds,
                                    int min_clients, int clients_per_round = 0) {
  return {.sites = std::move(sites),
          .num_rounds = num_rounds,
          .min_clients = min_clients,
          .clients_per_round = clients_per_round};
}

// Runs the controller's main loop (deadlines, liveness) on its own thread.
struct Running {
  explicit Running(server::Controller& c)
      : thread([this, &c] { outcome = c.run([] {}); done = true; }) {}
  ~Running() { thread.join(); }
  std::optional<server::JobOutcome> outcome;
  std::atomic<bool> done{false};
  std::thread thread;
};

// Waits (up to 10 s) for `site`'s next task that is not Wait.
server::Task next_task(ControllerJob& job, const std::string& site, int64_t generation = 0) {
  for (int i = 0; i < 50; ++i) {
    auto t = job.controller.next_task(site, generation, 200ms);
    if (t.kind != TaskKind::Wait) return t;
  }
  FAIL("no task for " << site);
  return {};
}

void wait_until(const std::function<bool()>& done) {
  for (int i = 0; i < 500 && !done(); ++i) std::this_thread::sleep_for(20ms);
  REQUIRE(done());
}

}  // namespace

TEST_CASE("each round trains a sample of clients_per_round sites, drawn from the job's seed") {
  const std::vector<std::string> sites = {"a", "b", "c", "d", "e"};
  auto samples_of = [&](uint64_t seed) {
    Events events;
    auto s = settings(sites, 4, 2, 2);
    s.seed = seed;
    ControllerJob job(s, &events);
    job.start(sites);
    for (int64_t round = 0; round < 4; ++round) {
      const auto& chosen = events.sampled.at(round);
      REQUIRE(chosen.size() == 2);
      for (const auto& site : sites) {
        const bool in_round = std::count(chosen.begin(), chosen.end(), site) > 0;
        CHECK((job.task(site).kind == TaskKind::Train) == in_round);
      }
      for (const auto& site : chosen) job.send_update(site, round, 1);
    }
    return events.sampled;
  };
  const auto first = samples_of(7);
  CHECK(samples_of(7) == first);  // reproducible from the seed
  CHECK(samples_of(8) != first);
  std::set<std::string> ever;
  for (const auto& round : first) ever.insert(round.begin(), round.end());
  CHECK(ever.size() > 2);  // not the same two sites every round
}

TEST_CASE("a round closes at its deadline with min_clients results; a straggler's late result is refused") {
  Events events;
  auto s = settings({"a", "b", "c"}, 2, 2);
  s.round_timeout = 300ms;
  ControllerJob job(s, &events);
  job.start_training({"a", "b", "c"});
  job.send_update("a", 0, 2);
  job.send_update("b", 0, 4);
  {
    Running running(job.controller);
    // Round 1 closes at its deadline without c: model 1 is a's and b's mean.
    const auto round2 = next_task(job, "a");
    REQUIRE(round2.kind == TaskKind::Train);
    CHECK(round2.round == 1);
    CHECK(ControllerJob::weight_of(round2) == doctest::Approx(3));
    CHECK(events.saw("round 0 closed without c"));
    // c's result for round 1 arrives late: refused, folded into nothing.
    CHECK_THROWS_AS(job.send_update("c", 0, 1000), server::LateResult);
    CHECK(events.saw("late result from c for round 0"));
    // c trains round 2 like the others.
    REQUIRE(next_task(job, "b").kind == TaskKind::Train);
    REQUIRE(next_task(job, "c").kind == TaskKind::Train);
    for (const std::string site : {"a", "b", "c"}) job.send_update(site, 1, 6);
    for (const std::string site : {"a", "b", "c"}) {
      REQUIRE(next_task(job, site).kind == TaskKind::Evaluate);
      job.controller.accept_evaluation({.site = site, .round = 2});
    }
  }
  CHECK(events.saw("job finished"));
  const auto model2 = storage::load_safetensors(job.dir / "models/global_round_2.safetensors");
  CHECK(ControllerJob::value_of(model2.tensors) == doctest::Approx(6));
}

TEST_CASE("a lost site leaves the round, which completes with the rest while min_clients allows") {
  Events events;
  ControllerJob job(settings({"a", "b", "c"}, 1, 2), &events);
  job.start_training({"a", "b", "c"});
  job.send_update("a", 0, 2);
  job.controller.site_lost("c", "c's client process ended early (killed by signal 9)");
  CHECK(events.saw("c dropped from round 0"));
  job.send_update("b", 0, 4);
  CHECK(events.saw("model 1 aggregated"));  // with a and b only: no wait for c
  const auto model = storage::load_safetensors(job.dir / "models/global_round_1.safetensors");
  CHECK(ControllerJob::value_of(model.tensors) == doctest::Approx(3));
  // The final evaluation asks only the sites still in the job.
  CHECK(job.task("a").kind == TaskKind::Evaluate);
  CHECK_THROWS_AS(job.task("c"), server::RegisterAgain);
}

TEST_CASE("the job ends as soon as fewer than min_clients sites can still answer, naming them") {
  Events events;
  ControllerJob job(settings({"a", "b", "c"}, 3, 2), &events);
  job.start_training({"a", "b", "c"});
  job.controller.failure({.site = "c", .rank = 1, .cause = "exit code 3", .log_tail = "boom\n"});
  CHECK_FALSE(events.saw("job failed"));  // a and b can still make min_clients
  job.controller.site_lost("b", "b's client process ended early (killed by signal 9)");
  REQUIRE(events.saw("job failed"));
  const auto t = job.task("a");
  REQUIRE(t.kind == TaskKind::Finish);
  CHECK_MESSAGE(t.reason.find("round 1 cannot reach job.min_clients (2)") != std::string::npos,
                t.reason);
  CHECK_MESSAGE(t.reason.find("b: b's client process ended early") != std::string::npos, t.reason);
  CHECK_MESSAGE(t.reason.find("c: c worker rank 1 failed: exit code 3") != std::string::npos,
                t.reason);
}

TEST_CASE("a silent site is dropped, and rejoins with the current round's task; a beating one never is") {
  Events events;
  auto s = settings({"a", "b"}, 1, 1);
  s.heartbeat_timeout = 400ms;
  ControllerJob job(s, &events);
  job.start_training({"a", "b"});
  std::atomic<bool> beating{true};
  std::atomic<int64_t> b_generation{-1};  // b beats once it registered again
  // a trains far longer than the timeout, beating all along.
  std::thread heart([&] {
    while (beating) {
      job.controller.heartbeat("a", 0);
      if (b_generation >= 0) job.controller.heartbeat("b", b_generation);
      std::this_thread::sleep_for(50ms);
    }
  });
  {
    Running running(job.controller);
    wait_until([&] { return events.saw("b dropped from round 0"); });
    CHECK_MESSAGE(events.drops.at(0).find("silent for") != std::string::npos, events.drops.at(0));
    // b's old group is told to register again, whatever it asks.
    CHECK_THROWS_AS(job.controller.heartbeat("b", 0), server::RegisterAgain);
    CHECK_THROWS_AS(job.send_update("b", 0, 100), server::RegisterAgain);
    const int64_t again = job.join("b");
    CHECK(again == 1);
    b_generation = again;
    CHECK(events.saw("rejoined b 1"));
    const auto t = next_task(job, "b", again);
    CHECK(t.kind == TaskKind::Train);
    CHECK(t.round == 0);
    job.send_update("b", 0, 8, again);
    std::this_thread::sleep_for(600ms);  // longer than the timeout: a beats, so stays
    job.send_update("a", 0, 4);
    for (const std::string site : {"a", "b"}) {
      const int64_t generation = site == "b" ? again : 0;
      REQUIRE(next_task(job, site, generation).kind == TaskKind::Evaluate);
      job.controller.accept_evaluation({.site = site, .round = 1, .generation = generation});
    }
  }
  beating = false;
  heart.join();
  CHECK_FALSE(events.saw("a dropped from round 0"));
  CHECK(events.saw("job finished"));
  const auto model = storage::load_safetensors(job.dir / "models/global_round_1.safetensors");
  CHECK(ControllerJob::value_of(model.tensors) == doctest::Approx(6));
}

TEST_CASE("a job resumed from its checkpoint reaches the uninterrupted job's models, aggregator state included") {
  // FedAdam keeps moments across rounds: a resume that lost them would drift.
  const std::string fedadam = FLARE_FEDADAM_PLUGIN;
  const std::vector<std::string> sites = {"a", "b"};
  auto update_of = [](const std::string& site, int64_t round) {
    return static_cast<float>((site == "a" ? 1.0 : 3.0) * (round + 1) + 0.25 * round * round);
  };
  auto run_rounds = [&](ControllerJob& job, int64_t from, int64_t to, int64_t generation) {
    std::vector<float> models;
    for (int64_t round = from; round < to; ++round) {
      for (const auto& site : sites) {
        const auto t = job.task(site, generation);
        REQUIRE(t.kind == TaskKind::Train);
        REQUIRE(t.round == round);
        models.push_back(ControllerJob::weight_of(t));
      }
      for (const auto& site : sites) job.send_update(site, round, update_of(site, round), generation);
    }
    return models;
  };
  auto with_checkpoints = [](const std::filesystem::path& dir) {
    auto s = settings({"a", "b"}, 4, 2);
    s.checkpoint_dir = dir;
    s.job_fingerprint = "job-1";
    return s;
  };

  ControllerJob whole(settings(sites, 4, 2), nullptr, false, fedadam, "{}");
  whole.start(sites, 1);
  const auto expected = run_rounds(whole, 0, 4, 0);

  testing::TempFolder checkpoints;
  {
    ControllerJob first(with_checkpoints(checkpoints.path()), nullptr, false, fedadam,
                        "{}");
    first.start(sites, 1);
    run_rounds(first, 0, 2, 0);
  }  // the server is gone after round 2
  auto latest = checkpoint::load_latest_checkpoint(checkpoints.path(), "job-1");
  REQUIRE(latest.checkpoint);
  CHECK(latest.checkpoint->round == 2);
  CHECK_FALSE(latest.checkpoint->aggregator.tensors.empty());
  CHECK(checkpoint::load_latest_checkpoint(checkpoints.path(), "job-2").refusals.size() == 2);

  Events events;
  ControllerJob resumed(with_checkpoints(checkpoints.path()), &events, false, fedadam,
                        "{}");
  resumed.controller.resume_from(std::move(*latest.checkpoint), latest.file, {});
  for (const auto& site : sites) resumed.join(site);
  const auto rest = run_rounds(resumed, 2, 4, 0);
  CHECK(events.saw("resumed after round 2"));
  REQUIRE(rest.size() == 4);
  for (size_t i = 0; i < rest.size(); ++i)
    CHECK(rest[i] == doctest::Approx(expected[4 + i]).epsilon(1e-6));
  const auto final_whole = storage::load_safetensors(whole.dir / "models/global_round_4.safetensors");
  const auto final_resumed =
      storage::load_safetensors(resumed.dir / "models/global_round_4.safetensors");
  CHECK(ControllerJob::value_of(final_resumed.tensors) ==
        doctest::Approx(ControllerJob::value_of(final_whole.tensors)).epsilon(1e-6));
}

TEST_CASE("a site registering again while its group runs takes over its unanswered task") {
  // Its rank 0 lost a stopped server while sending the initial model, and
  // registered again once the server answered: the server had dropped nothing.
  ControllerJob job(settings({"a", "b"}, 1, 2));
  job.join("a");
  job.join("b");
  REQUIRE(job.task("a").kind == TaskKind::SendInitialModel);
  const int64_t again = job.join("a");
  CHECK(again == 1);
  CHECK_THROWS_AS(job.controller.accept_initial_model(
                      {.site = "a", .generation = 0, .weights = ControllerJob::weights(1)}),
                  server::RejectedRequest);
  REQUIRE(job.task("a", again).kind == TaskKind::SendInitialModel);
  job.controller.accept_initial_model(
      {.site = "a", .generation = again, .weights = ControllerJob::weights(1)});
  CHECK(job.task("a", again).kind == TaskKind::Train);
  CHECK(job.task("b").kind == TaskKind::Train);
}

TEST_CASE("a site lost before it registered leaves the job, which begins once the others are in") {
  // Not at the start timeout (an hour here): the lost site will not come.
  Events events;
  ControllerJob job(settings({"a", "b", "c"}, 1, 2), &events);
  job.join("a");
  job.controller.site_lost("b", "b's client process ended early (killed by signal 9)");
  CHECK(job.task("a").kind == TaskKind::Wait);  // c may still come
  job.join("c");
  REQUIRE(job.task("a").kind == TaskKind::SendInitialModel);
  job.controller.accept_initial_model({.site = "a", .weights = ControllerJob::weights(1)});
  CHECK(events.sampled.at(0) == std::vector<std::string>{"a", "c"});
}
