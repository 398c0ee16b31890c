// What the job's events become: metrics.jsonl lines (their schema is what
// tools and the end-to-end tests read) and the terminal's lines.
#include <doctest/doctest.h>

#include <fstream>
#include <sstream>

#include <spdlog/sinks/null_sink.h>

#include "server/run_reporter.hpp"
#include "temp_folder.hpp"

using namespace flare;

namespace {

struct Reporter {
  testing::TempFolder dir;
  storage::MetricsLog metrics{dir / "metrics.jsonl"};
  std::ostringstream screen;
  server::ProgressDisplay display{screen, false, 3};
  server::RunReporter reporter{
      metrics, display,
      std::make_shared<spdlog::logger>("server", std::make_shared<spdlog::sinks::null_sink_mt>()),
      3};

  std::vector<nlohmann::json> lines() const {
    std::ifstream in(metrics.path());
    std::vector<nlohmann::json> out;
    for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
    return out;
  }
  bool shows(const std::string& text) const {
    return screen.str().find(text) != std::string::npos;
  }
};

server::SiteUpdate trained_update() {
  return {.site = "site-2",
          .round = 1,
          .num_samples = 500,
          .num_steps = 20,
          .train_seconds = 2,
          .train_metrics = {{"train_loss", 0.25}, {"train_acc", 0.9}},
          .evaluation = {{"validation", {{"accuracy", 0.5}, {"num_samples", 100}}},
                         {"test", {{"loss", 1.5}, {"num_samples", 200}}}},
          .meta = {{"data", "generated CIFAR-10-format data"}}};
}

}  // namespace

TEST_CASE("a site's result is one site line with its training metrics and its evaluation") {
  Reporter r;
  r.reporter.site_trained(trained_update());
  const auto lines = r.lines();
  REQUIRE(lines.size() == 1);
  const auto& line = lines[0];
  CHECK(line["kind"] == "site");
  CHECK(line["round"] == 2);  // 1-based for users
  CHECK(line["site"] == "site-2");
  CHECK(line["num_samples"] == 500);
  CHECK(line["num_steps"] == 20);
  CHECK(line["train_seconds"] == 2);
  CHECK(line["images_per_s"] == 250);
  CHECK(line["train_loss"] == 0.25);
  CHECK(line["train_acc"] == 0.9);
  CHECK(line["received_model"] == nlohmann::json{{"val_acc", 0.5}, {"val_num_samples", 100},
                                                 {"test_loss", 1.5}, {"test_num_samples", 200}});
}

TEST_CASE("a site's result is one terminal line with its speed and training loss") {
  Reporter r;
  r.reporter.site_trained(trained_update());
  CHECK_MESSAGE(r.shows("round 2/3  site-2 done: 500 samples, 250 images/s, train_loss 0.2500\n"),
                r.screen.str());
}

TEST_CASE("a site's training data is announced once") {
  Reporter r;
  r.reporter.site_trained(trained_update());
  auto again = trained_update();
  again.round = 2;
  r.reporter.site_trained(again);
  const std::string text = r.screen.str();
  const std::string announcement = "site-2 trains on generated CIFAR-10-format data\n";
  const auto first = text.find(announcement);
  CHECK(first != std::string::npos);
  CHECK(text.find("trains on", first + announcement.size()) == std::string::npos);
}

TEST_CASE("a measured model is one global line naming its file, with its figures and speed") {
  Reporter r;
  server::RoundFigures f{.model_round = 2,
                         .metrics = {{"val_acc", 0.75}, {"val_loss", 0.5}},
                         .round_seconds = 4,
                         .images_per_s = 1000,
                         .best = true};
  r.reporter.model_measured(f, "/ws/models/global_round_2.safetensors");
  const auto lines = r.lines();
  REQUIRE(lines.size() == 1);
  CHECK(lines[0] == nlohmann::json{{"kind", "global"}, {"round", 2}, {"best", true},
                                   {"model", "global_round_2.safetensors"}, {"val_acc", 0.75},
                                   {"val_loss", 0.5}, {"round_seconds", 4},
                                   {"images_per_s", 1000}});
  CHECK_MESSAGE(r.shows("global model after round 2  val_acc 0.7500  val_loss 0.5000  (best so far)"),
                r.screen.str());
}

TEST_CASE("the initial model's line has no round time or speed") {
  Reporter r;
  r.reporter.model_measured({.model_round = 0, .metrics = {{"val_acc", 0.1}}},
                            "global_round_0.safetensors");
  const auto line = r.lines().at(0);
  CHECK_FALSE(line.contains("round_seconds"));
  CHECK_FALSE(line.contains("images_per_s"));
  CHECK(line["best"] == false);
  CHECK(r.shows("initial global model  val_acc 0.1000\n"));
}

TEST_CASE("a model the save policy did not write has no file in its line") {
  Reporter r;
  r.reporter.model_measured({.model_round = 3, .metrics = {{"val_acc", 0.2}}}, {});
  const auto line = r.lines().at(0);
  REQUIRE(line.contains("model"));
  CHECK(line["model"].is_null());
}

TEST_CASE("a failure's handling decides what the terminal shows") {
  const server::RankFailure killed{.site = "site-1", .rank = 1, .cause = "killed by signal 9",
                                   .restarts_left = 2};
  SUBCASE("a restart names the restarts left") {
    Reporter r;
    r.reporter.rank_failed(killed, server::FailureHandling::Restarting);
    CHECK(r.shows("site-1 worker rank 1 failed: killed by signal 9; restarting its worker group "
                  "(2 restarts left)\n"));
  }
  SUBCASE("a later report of a restarting group shows its own cause") {
    Reporter r;
    r.reporter.rank_failed(killed, server::FailureHandling::AlreadyRestarting);
    CHECK(r.shows("site-1 worker rank 1 failed: killed by signal 9 (its worker group is already "
                  "restarting)\n"));
  }
  SUBCASE("a later report from a broken collective only echoes it and is not shown") {
    Reporter r;
    auto echo = killed;
    echo.in_collective = true;
    r.reporter.rank_failed(echo, server::FailureHandling::AlreadyRestarting);
    CHECK(r.screen.str().empty());
  }
  SUBCASE("a failure that ends the job is left to the job's failure message") {
    Reporter r;
    r.reporter.rank_failed(killed, server::FailureHandling::EndsJob);
    CHECK(r.screen.str().empty());
  }
}

TEST_CASE("each reported rank failure is one failure line: where, the cause as data, the action") {
  Reporter r;
  r.reporter.rank_failed({.site = "site-1", .rank = 3, .cause = "killed by signal 9 (SIGKILL)",
                          .generation = 1, .restarting = true, .restarts_left = 2,
                          .node_rank = 1, .signal = 9},
                         server::FailureHandling::Restarting);
  r.reporter.rank_failed({.site = "site-2", .rank = 0, .cause = "exit code 1: boom",
                          .in_collective = true, .exit_code = 1},
                         server::FailureHandling::AlreadyRestarting);
  r.reporter.rank_failed({.site = "site-2", .rank = 1, .cause = "no progress for 2.5 s",
                          .hang_s = 2.5},
                         server::FailureHandling::EndsJob);
  r.reporter.rank_failed({.site = "site-2", .rank = 1, .cause = "?"},
                         server::FailureHandling::EndsJob);
  const auto lines = r.lines();
  REQUIRE(lines.size() == 4);
  CHECK(lines[0] == nlohmann::json{{"kind", "failure"}, {"site", "site-1"}, {"node", 1},
                                   {"rank", 3}, {"generation", 1}, {"in_collective", false},
                                   {"cause", {{"signal", 9}, {"signal_name", "SIGKILL"}}},
                                   {"action", "restart"}, {"restarts_left", 2}});
  CHECK(lines[1]["cause"] == nlohmann::json{{"exit_code", 1}});
  CHECK(lines[1]["action"] == "already_restarting");
  CHECK(lines[1]["in_collective"] == true);
  CHECK(lines[2]["cause"] == nlohmann::json{{"hang_s", 2.5}});
  CHECK(lines[2]["action"] == "fail_job");
  CHECK(lines[3]["cause"] == nlohmann::json::object());  // the site did not say
}

TEST_CASE("the job's end is one job line: its status, why it failed and the rounds completed") {
  const server::GlobalModel model(2, {});
  SUBCASE("succeeded") {
    Reporter r;
    r.reporter.round_aggregated(model, "global_round_2.safetensors", nlohmann::json::object());
    r.reporter.job_finished();
    CHECK(r.lines() == std::vector<nlohmann::json>{{{"kind", "job"},
                                                    {"status", "succeeded"},
                                                    {"rounds_completed", 2}}});
  }
  SUBCASE("failed") {
    Reporter r;
    r.reporter.job_failed("site-1 worker rank 1 failed: exit code 1");
    CHECK(r.lines() == std::vector<nlohmann::json>{
                           {{"kind", "job"},
                            {"status", "failed"},
                            {"reason", "site-1 worker rank 1 failed: exit code 1"},
                            {"rounds_completed", 0}}});
  }
}

TEST_CASE("the terminal announces joins, rounds and the final evaluation") {
  Reporter r;
  r.reporter.site_joined({.site = "site-1", .world_size = 4}, 0, false);
  r.reporter.site_joined({.site = "site-1", .world_size = 4}, 1, true);
  r.reporter.round_started(0, {"site-1", "site-2"});
  r.reporter.final_evaluation_started();
  CHECK(r.screen.str() ==
        "site-1 joined with 4 worker ranks\n"
        "site-1 rejoined with a restarted worker group\n"
        "round 1/3: training on 2 sites\n"
        "evaluating the final global model\n");
}

TEST_CASE("a key metric nobody reports is a warning line, on the terminal and in metrics.jsonl") {
  Reporter r;
  r.reporter.key_metric_missing("val_accuracy", {"val_acc", "val_loss"});
  const auto lines = r.lines();
  REQUIRE(lines.size() == 1);
  CHECK(lines[0]["kind"] == "warning");
  CHECK(lines[0]["about"] == "server.key_metric");
  CHECK(lines[0]["key_metric"] == "val_accuracy");
  CHECK(lines[0]["reported"] == nlohmann::json{"val_acc", "val_loss"});
  CHECK_MESSAGE(r.shows("warning: server.key_metric = \"val_accuracy\" is not among the figures "
                        "the sites report (val_acc, val_loss): no best model"),
                r.screen.str());
}

TEST_CASE("a site's step metrics become one train_step line per step, every name a key") {
  Reporter r;
  r.reporter.site_metrics({.site = "site-1",
                           .generation = 0,
                           .points = {{"train_loss", 1.93, 120, 0, 0},
                                      {"images_per_s", 6500.0, 120, 0, 0},
                                      {"train_loss", 1.5, 170, 1, 1},
                                      {"step", 99.0, 170, 1, 1}},  // its own fields win
                           .dropped = {"train_loss = nan at step 220"}});
  const auto lines = r.lines();
  REQUIRE(lines.size() == 2);
  CHECK(lines[0] == nlohmann::json{{"kind", "train_step"}, {"site", "site-1"}, {"round", 1},
                                   {"step", 120}, {"epoch", 0}, {"train_loss", 1.93},
                                   {"images_per_s", 6500.0}});
  CHECK(lines[1]["round"] == 2);  // 1-based, as the site lines
  CHECK(lines[1]["step"] == 170);
  CHECK(lines[1]["epoch"] == 1);
  CHECK(lines[1]["train_loss"] == 1.5);
}
