// The round state machine over domain types, without gRPC: the phases of a
// job, the one shared global model per round, figures and the best model,
// refusals and deadlines, and the events it reports in order.
#include <doctest/doctest.h>

#include <limits>

#include <algorithm>
#include <thread>

#include "controller_job.hpp"
#include "storage/safetensors.hpp"

using namespace flare;
using server::TaskKind;
using testing::ControllerJob;
using namespace std::chrono_literals;

namespace {

// Records each event by name (and round where there is one), in order.
struct RecordedEvents final : server::JobEvents {
  std::vector<std::string> seen;
  std::vector<server::RoundFigures> measured;
  std::vector<std::vector<std::string>> sampled;  // each round's sites
  std::vector<std::string> drops;                 // each drop's reason
  bool disk_full = false;  // recording a site's round fails, as on a full disk

  void site_joined(const server::SiteJoin& j, int64_t, bool rejoined) override {
    seen.push_back((rejoined ? "rejoined " : "joined ") + j.site);
  }
  void initial_model_received(const std::string& site, const server::GlobalModel&) override {
    seen.push_back("initial model from " + site);
  }
  void round_started(int64_t round, const std::vector<std::string>& sites) override {
    seen.push_back("round " + std::to_string(round) + " started");
    sampled.push_back(sites);
  }
  void site_dropped(const std::string& site, int64_t round, const std::string& reason) override {
    seen.push_back(site + " dropped from round " + std::to_string(round));
    drops.push_back(reason);
  }
  void round_closed_without(int64_t round, const std::vector<std::string>& sites) override {
    std::string names;
    for (const auto& s : sites) names += " " + s;
    seen.push_back("round " + std::to_string(round) + " closed without" + names);
  }
  void late_result_refused(const std::string& site, int64_t round) override {
    seen.push_back("late result from " + site + " for round " + std::to_string(round));
  }
  void job_resumed(int64_t round, const std::filesystem::path&,
                   const std::vector<std::string>& refused) override {
    seen.push_back("resumed after round " + std::to_string(round) + " (" +
                   std::to_string(refused.size()) + " refused)");
  }
  void site_trained(const server::SiteUpdate& u) override {
    if (disk_full) throw storage::StorageError("metrics.jsonl: cannot append to the metrics log");
    seen.push_back(u.site + " trained round " + std::to_string(u.round));
  }
  void round_aggregated(const server::GlobalModel& m, const std::filesystem::path&,
                        const nlohmann::json&) override {
    seen.push_back("model " + std::to_string(m.model_round()) + " aggregated");
  }
  void final_evaluation_started() override { seen.push_back("final evaluation"); }
  void model_measured(const server::RoundFigures& f, const std::filesystem::path&) override {
    seen.push_back("model " + std::to_string(f.model_round) + " measured");
    measured.push_back(f);
  }
  void key_metric_missing(const std::string& key, const std::vector<std::string>& reported) override {
    std::string text = "no " + key + " among:";
    for (const auto& name : reported) text += " " + name;
    seen.push_back(text);
  }
  void site_progress(const server::SiteProgress&) override { seen.push_back("progress"); }
  void site_metrics(const server::SiteMetrics& m) override {
    seen.push_back(m.site + " metrics (" + std::to_string(m.points.size()) + " points)");
  }
  void rank_failed(const server::RankFailure& f, server::FailureHandling) override {
    seen.push_back(f.site + " rank failed");
  }
  void site_refused(const server::SiteRefusal& r) override {
    seen.push_back(r.site + " refused: " + r.reason);
  }
  void aggregator_failed(const server::AggregatorFailure& f) override {
    seen.push_back("aggregator failed in " + f.call);
  }
  void job_failed(const std::string&) override { seen.push_back("job failed"); }
  void job_finished() override { seen.push_back("job finished"); }
};

float stored_value(const std::filesystem::path& file) {
  return ControllerJob::value_of(storage::load_safetensors(file).tensors);
}

}  // namespace

TEST_CASE("a job goes from registration through its rounds and the final evaluation to its end") {
  ControllerJob job({"a", "b"}, 2);
  job.join("a");
  CHECK(job.task("a").kind == TaskKind::Wait);  // b has not joined yet
  job.join("b");
  CHECK(job.task("b").kind == TaskKind::Wait);  // only the first site sends the initial model
  REQUIRE(job.task("a").kind == TaskKind::SendInitialModel);
  job.controller.accept_initial_model({.site = "a", .weights = ControllerJob::weights(1)});

  for (int64_t round = 0; round < 2; ++round) {
    for (const std::string site : {"a", "b"}) {
      const auto t = job.task(site);
      REQUIRE(t.kind == TaskKind::Train);
      CHECK(t.round == round);
      CHECK(t.num_rounds == 2);
      CHECK(job.task(site).kind == TaskKind::Wait);  // one task per site per round
    }
    job.send_update("a", round, 10.0f * (round + 1));
    job.send_update("b", round, 30.0f * (round + 1));
  }
  const auto final_task = job.task("a");
  REQUIRE(final_task.kind == TaskKind::Evaluate);
  CHECK(final_task.round == 2);
  CHECK(ControllerJob::weight_of(final_task) == doctest::Approx(40));
  REQUIRE(job.task("b").kind == TaskKind::Evaluate);
  job.controller.accept_evaluation({.site = "a", .round = 2});
  job.controller.accept_evaluation({.site = "b", .round = 2});
  CHECK(job.task("b").kind == TaskKind::Finish);

  const auto outcome = job.controller.run([] {});
  CHECK(outcome.success);
  CHECK(stored_value(job.dir / "models/global_round_0.safetensors") == 1);
  CHECK(stored_value(job.dir / "models/global_round_1.safetensors") == doctest::Approx(20));
  CHECK(stored_value(job.dir / "models/global_round_2.safetensors") == doctest::Approx(40));
}

TEST_CASE("every site's task of a round carries the one global model of that round") {
  ControllerJob job({"a", "b", "c"}, 2);
  job.start({"a", "b", "c"});
  const auto a = job.task("a"), b = job.task("b"), c = job.task("c");
  REQUIRE(a.model);
  CHECK(a.model == b.model);
  CHECK(b.model == c.model);
  CHECK(a.model->model_round() == 0);
  for (const std::string site : {"a", "b", "c"}) job.send_update(site, 0, 3);
  const auto next = job.task("a");
  CHECK(next.model != a.model);
  CHECK(next.model->model_round() == 1);
  CHECK(job.task("b").model == next.model);
}

TEST_CASE("a round's global model is held until its figures are in, then released") {
  ControllerJob job({"a", "b"}, 2);
  job.start_training({"a", "b"});
  job.send_update("a", 0, 4);
  job.send_update("b", 0, 8);
  std::weak_ptr<const server::GlobalModel> model1;
  {
    const auto t = job.task("a");
    REQUIRE(t.kind == TaskKind::Train);
    model1 = t.model;
  }
  REQUIRE(job.task("b").kind == TaskKind::Train);
  // The sites' evaluations of model 1 come with their round-2 updates.
  auto update_a = ControllerJob::update("a", 1, 0);
  update_a.evaluation = ControllerJob::evaluation(0.5);
  auto update_b = ControllerJob::update("b", 1, 0);
  update_b.evaluation = ControllerJob::evaluation(0.7);
  job.controller.accept_update(update_a);
  CHECK_FALSE(model1.expired());
  job.controller.accept_update(update_b);
  CHECK(model1.expired());  // measured, saved as best, replaced by model 2: no copy lingers
  const auto best = storage::load_safetensors(job.dir / "models/best.safetensors");
  CHECK(best.metadata.at("round") == "1");
  CHECK(ControllerJob::value_of(best.tensors) == doctest::Approx(6));
}

TEST_CASE("a model's figures are the sample-weighted mean of the sites' evaluations") {
  RecordedEvents events;
  ControllerJob job({"a", "b"}, 1, &events);
  job.start_training({"a", "b"});
  auto ua = ControllerJob::update("a", 0, 1);
  ua.evaluation = ControllerJob::evaluation(0.2, 10);
  auto ub = ControllerJob::update("b", 0, 1);
  ub.evaluation = ControllerJob::evaluation(0.6, 30);
  job.controller.accept_update(ua);
  CHECK(events.measured.empty());  // not before every site measured it
  job.controller.accept_update(ub);
  REQUIRE(events.measured.size() == 1);
  const auto& initial = events.measured[0];
  CHECK(initial.model_round == 0);
  CHECK(initial.metric("val_acc") == doctest::Approx(0.5));
  CHECK(initial.metric("val_loss") == doctest::Approx(0.5));
  CHECK_FALSE(initial.best);  // the initial model is measured but never best
  CHECK_FALSE(std::filesystem::exists(job.dir / "models/best.safetensors"));
}

TEST_CASE("a later model is best only when it beats every earlier one on the key metric") {
  RecordedEvents events;
  ControllerJob job({"a"}, 3, &events);
  job.start({"a"});
  const double accuracies[] = {0.1, 0.6, 0.4};  // of models 0, 1, 2
  for (int64_t round = 0; round < 3; ++round) {
    REQUIRE(job.task("a").kind == TaskKind::Train);
    auto u = ControllerJob::update("a", round, static_cast<float>(round + 1));
    u.evaluation = ControllerJob::evaluation(accuracies[round]);
    job.controller.accept_update(u);
  }
  REQUIRE(job.task("a").kind == TaskKind::Evaluate);
  job.controller.accept_evaluation(
      {.site = "a", .round = 3, .evaluation = ControllerJob::evaluation(0.9)});
  std::vector<bool> best;
  for (const auto& f : events.measured) best.push_back(f.best);
  CHECK(best == std::vector<bool>{false, true, false, true});
  const auto file = storage::load_safetensors(job.dir / "models/best.safetensors");
  CHECK(file.metadata.at("round") == "3");
  CHECK(ControllerJob::value_of(file.tensors) == 3);
  const auto figures = job.controller.figures();
  REQUIRE(figures.size() == 4);
  CHECK(figures[1].round_seconds >= 0);
  CHECK(figures[0].round_seconds < 0);  // the initial model took no round
}

TEST_CASE("a key metric no site reports is said once, at the first figures, naming those there are") {
  RecordedEvents events;
  ControllerJob job({"a"}, 2, &events, 3600s, "val_accuracy");
  job.start({"a"});
  for (int64_t round = 0; round < 2; ++round) {
    REQUIRE(job.task("a").kind == TaskKind::Train);
    auto u = ControllerJob::update("a", round, static_cast<float>(round + 1));
    u.evaluation = ControllerJob::evaluation(0.5);
    job.controller.accept_update(u);
  }
  const auto said = std::count_if(events.seen.begin(), events.seen.end(),
                                   [](const std::string& e) { return e.starts_with("no "); });
  CHECK(said == 1);
  CHECK(std::find(events.seen.begin(), events.seen.end(),
                  "no val_accuracy among: val_acc val_loss") != events.seen.end());
}

TEST_CASE("a key metric the sites report is never warned about") {
  RecordedEvents events;
  ControllerJob job({"a"}, 1, &events);
  job.start({"a"});
  REQUIRE(job.task("a").kind == TaskKind::Train);
  auto u = ControllerJob::update("a", 0, 1);
  u.evaluation = ControllerJob::evaluation(0.5);
  job.controller.accept_update(u);
  CHECK(std::none_of(events.seen.begin(), events.seen.end(),
                     [](const std::string& e) { return e.starts_with("no "); }));
}

TEST_CASE("the controller reports its events in the order things happen") {
  RecordedEvents events;
  ControllerJob job({"a", "b"}, 1, &events);
  job.start_training({"a", "b"});
  job.send_update("b", 0, 1);
  job.send_update("a", 0, 1);
  REQUIRE(job.task("a").kind == TaskKind::Evaluate);
  REQUIRE(job.task("b").kind == TaskKind::Evaluate);
  job.controller.accept_evaluation({.site = "a", .round = 1});
  job.controller.accept_evaluation({.site = "b", .round = 1});
  CHECK(events.seen == std::vector<std::string>{
                           "joined a", "joined b", "initial model from a", "round 0 started",
                           "b trained round 0", "a trained round 0", "no val_acc among:",
                           "model 0 measured",
                           "model 1 aggregated", "final evaluation", "model 1 measured",
                           "job finished"});
}

TEST_CASE("a site's step metrics reach the events while the job runs, and are refused after its end") {
  RecordedEvents events;
  ControllerJob job({"a", "b"}, 1, &events);
  job.start_training({"a", "b"});
  const server::SiteMetrics batch{.site = "a", .generation = 0,
                                  .points = {{.name = "train_loss", .value = 1.5, .step = 50}},
                                  .dropped = {}};
  job.controller.site_metrics(batch);
  CHECK(events.seen.back() == "a metrics (1 points)");
  CHECK_THROWS_AS(job.controller.site_metrics({.site = "stranger", .generation = 0, .points = {},
                                               .dropped = {}}),
                  server::RejectedRequest);
  CHECK_THROWS_AS(job.controller.site_metrics({.site = "a", .generation = 1, .points = {},
                                               .dropped = {}}),
                  server::RejectedRequest);  // a generation never handed out
  job.send_update("a", 0, 1);
  job.send_update("b", 0, 1);
  job.task("a");
  job.task("b");
  job.controller.accept_evaluation({.site = "a", .round = 1});
  job.controller.accept_evaluation({.site = "b", .round = 1});
  REQUIRE(events.seen.back() == "job finished");
  CHECK_THROWS_AS(job.controller.site_metrics(batch), server::JobEnded);
  CHECK(events.seen.back() == "job finished");  // the job's line stays last
}

TEST_CASE("requests that do not fit the job's state are refused") {
  ControllerJob job({"a", "b"}, 2);
  CHECK_THROWS_AS(job.join("stranger"), server::RejectedRequest);
  CHECK_THROWS_AS(job.task("stranger"), server::RejectedRequest);
  job.join("a");
  job.join("b");
  REQUIRE(job.task("a").kind == TaskKind::SendInitialModel);
  CHECK_THROWS_AS(job.controller.accept_initial_model({.site = "b", .weights = ControllerJob::weights(0)}),
                  server::RejectedRequest);
  CHECK_THROWS_AS(job.controller.accept_initial_model({.site = "a"}), server::RejectedRequest);
  job.controller.accept_initial_model({.site = "a", .weights = ControllerJob::weights(0)});
  CHECK_THROWS_AS(job.send_update("a", 0, 1), server::RejectedRequest);  // no task handed yet
  REQUIRE(job.task("a").kind == TaskKind::Train);
  CHECK_THROWS_AS(job.send_update("a", 1, 1), server::RejectedRequest);  // another round
  job.send_update("a", 0, 1);
  CHECK_THROWS_AS(job.send_update("a", 0, 1), server::RejectedRequest);  // counted once
  CHECK_THROWS_AS(job.controller.accept_evaluation({.site = "a", .round = 2}),
                  server::RejectedRequest);  // not in the final evaluation yet
}

TEST_CASE("an update whose tensors are not the global model's is refused before the aggregator sees it") {
  ControllerJob job({"a", "b"}, 1);
  job.start_training({"a", "b"});
  auto extra = ControllerJob::update("a", 0, 1);
  extra.weights.push_back(ControllerJob::weights(1)[0]);
  extra.weights[1].name = "v";
  // The count is refused from the header, before a byte of a tensor is read.
  CHECK_THROWS_WITH_AS(job.controller.accept_update(extra),
                       "update from a for round 1 announces 2 tensors, the global model has 1",
                       server::InvalidRequest);
  auto renamed = ControllerJob::update("a", 0, 1);
  renamed.weights[0].name = "v";
  CHECK_THROWS_WITH_AS(job.controller.accept_update(renamed),
                       "update from a for round 1: tensor 'v' is not in the global model",
                       server::InvalidRequest);
  auto wrong_dtype = ControllerJob::update("a", 0, 1);
  wrong_dtype.weights[0].dtype = {kDLInt, 32, 1};
  CHECK_THROWS_WITH_AS(job.controller.accept_update(wrong_dtype),
                       "update from a for round 1: tensor 'w' is int32, the global model's is "
                       "float32",
                       server::InvalidRequest);
  auto none = ControllerJob::update("a", 0, 1);
  none.weights.clear();
  CHECK_THROWS_WITH_AS(job.controller.accept_update(none),
                       "update from a for round 1 announces 0 tensors, the global model has 1",
                       server::InvalidRequest);
  job.send_update("a", 0, 1);  // still a's to answer
  job.send_update("b", 0, 3);
  CHECK(ControllerJob::weight_of(job.task("a")) == doctest::Approx(2));
}

TEST_CASE("a checked update the server then fails to record fails the job, naming the server") {
  RecordedEvents events;
  ControllerJob job({"a", "b"}, 1, &events, 2s);  // before: refused after counting, then a timeout
  job.start_training({"a", "b"});
  events.disk_full = true;
  // The site did nothing wrong: it is told the job ended, not that it failed.
  CHECK_THROWS_AS(job.send_update("a", 0, 1), server::JobEnded);
  const auto outcome = job.controller.run([] {});
  CHECK_FALSE(outcome.success);
  CHECK(outcome.failure ==
        "the server failed: applying the update from a for round 1: metrics.jsonl: cannot "
        "append to the metrics log");
  const auto finish = job.task("a");
  CHECK(finish.kind == TaskKind::Finish);
  CHECK(finish.reason == outcome.failure);
}

TEST_CASE("sites that do not register in time fail the job, naming them") {
  ControllerJob job({"a", "b", "c"}, 1, nullptr, 50ms);
  job.join("b");
  const auto outcome = job.controller.run([] {});
  CHECK_FALSE(outcome.success);
  CHECK_MESSAGE(outcome.failure.find("missing a, c") != std::string::npos, outcome.failure);
}

TEST_CASE("a round without every answer in time fails the job, naming the silent sites") {
  ControllerJob job({"a", "b"}, 1, nullptr, 200ms);
  job.start({"a", "b"});
  REQUIRE(job.task("a").kind == TaskKind::Train);
  job.send_update("a", 0, 1);
  const auto outcome = job.controller.run([] {});
  CHECK_FALSE(outcome.success);
  CHECK_MESSAGE(outcome.failure.find("no answer from b") != std::string::npos, outcome.failure);
}

TEST_CASE("a failed job hands every site Finish with the reason") {
  RecordedEvents events;
  ControllerJob job({"a", "b"}, 1, &events);
  job.start({"a", "b"});
  // b's group failed for good: it leaves, and a alone cannot make min_clients (every site).
  job.controller.failure({.site = "b", .rank = 2, .cause = "exit code 3", .log_tail = "boom\n"});
  const auto t = job.task("a");
  CHECK(t.kind == TaskKind::Finish);
  CHECK(t.reason == "round 1 cannot reach job.min_clients (2): 0 answered and 1 can still answer; "
                    "b: b worker rank 2 failed: exit code 3\nlast lines of its log:\nboom\n");
  const auto outcome = job.controller.run([] {});
  CHECK_FALSE(outcome.success);
  CHECK(outcome.failure == t.reason);
  CHECK(std::count(events.seen.begin(), events.seen.end(), "job failed") == 1);
}

TEST_CASE("a site's refusal fails the job at once when min_clients needs it, naming the site and its reason") {
  RecordedEvents events;
  ControllerJob job({"a", "b"}, 1, &events);
  job.join("a");  // b refuses before its workers ever register
  job.controller.site_refused({.site = "b", .reason = "plugin 'x' is not allowed"});
  const auto outcome = job.controller.run([] {});
  CHECK_FALSE(outcome.success);
  CHECK(outcome.failure == "job.min_clients (2) sites can no longer register: b: b refused the "
                           "job: plugin 'x' is not allowed");
  CHECK(std::count(events.seen.begin(), events.seen.end(),
                   "b refused: plugin 'x' is not allowed") == 1);
  CHECK(job.task("a").kind == TaskKind::Finish);
  // Once the job is over a refusal changes nothing.
  CHECK_THROWS(job.controller.site_refused({.site = "a", .reason = "late"}));
}

TEST_CASE("a long poll returns the task as soon as it exists") {
  ControllerJob job({"a", "b"}, 1);
  job.join("a");
  std::thread second([&] {
    std::this_thread::sleep_for(50ms);
    job.join("b");
  });
  const auto t = job.controller.next_task("a", 0, 10s);
  second.join();
  CHECK(t.kind == TaskKind::SendInitialModel);
}

TEST_CASE("an aggregator of ABI 1.1 is handed whole updates, read back from the spool") {
  ControllerJob job({"a", "b"}, 1, nullptr, 3600s, "val_acc", false, FLARE_ABI_1_1_AGGREGATOR);
  REQUIRE_FALSE(job.aggregator.folds_chunks());
  job.start_training({"a", "b"});
  auto not_finite = ControllerJob::update("a", 0, std::numeric_limits<float>::infinity());
  CHECK_THROWS_WITH_AS(job.controller.accept_update(not_finite),
                       doctest::Contains("update from a for round 1: tensor 'w' has a non-finite value"),
                       server::InvalidRequest);
  job.send_update("a", 0, 1);
  job.send_update("b", 0, 3);
  CHECK(ControllerJob::weight_of(job.task("a")) == doctest::Approx(2));
}
