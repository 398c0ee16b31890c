#include <doctest/doctest.h>

#include <fstream>

#include "report/run_record.hpp"
#include "temp_folder.hpp"

using namespace flare::report;
using flare::testing::TempFolder;

namespace {

std::filesystem::path metrics_with(const TempFolder& dir, const std::string& lines) {
  const auto file = dir / "metrics.jsonl";
  std::ofstream(file) << lines;
  return file;
}

}  // namespace

TEST_CASE("each kind of line lands in the run's record with its figures") {
  TempFolder dir;
  const RunRecord r = read_run_record(metrics_with(
      dir,
      R"({"kind":"site","round":1,"site":"site-1","num_samples":40.0,"train_seconds":0.5,"images_per_s":80.0,"train_loss":0.7,"received_model":{"val_acc":0.25,"val_num_samples":10}})" "\n"
      R"({"kind":"train_step","site":"site-1","round":1,"step":120,"epoch":0,"train_loss":1.93,"images_per_s":6500.0,"lr":0.01})" "\n"
      R"({"kind":"global","round":1,"best":true,"model":"global_round_1.safetensors","val_acc":0.5,"round_seconds":1.5})" "\n"
      R"({"kind":"aggregator","round":1,"dp_epsilon":2.5})" "\n"
      R"({"kind":"failure","site":"site-2","node":0,"rank":1,"generation":0,"in_collective":false,"cause":{"signal":9,"signal_name":"SIGKILL"},"action":"restart","restarts_left":1})" "\n"
      R"({"kind":"warning","about":"server.key_metric","message":"no best model"})" "\n"
      R"({"kind":"job","status":"failed","reason":"site-2 gave up","rounds_completed":1})" "\n"));

  REQUIRE(r.site_rounds.size() == 1);
  CHECK(r.site_rounds[0].site == "site-1");
  CHECK(r.site_rounds[0].round == 1);
  CHECK(r.site_rounds[0].figures == Figures{{"num_samples", 40.0}, {"train_seconds", 0.5},
                                            {"images_per_s", 80.0}, {"train_loss", 0.7}});
  CHECK(r.site_rounds[0].received_model == Figures{{"val_acc", 0.25}, {"val_num_samples", 10}});

  REQUIRE(r.train_steps.size() == 1);
  CHECK(r.train_steps[0].step == 120);
  CHECK(r.train_steps[0].round == 1);
  // The step, round and epoch place the point; every other number is a figure.
  CHECK(r.train_steps[0].figures ==
        Figures{{"train_loss", 1.93}, {"images_per_s", 6500.0}, {"lr", 0.01}});

  REQUIRE(r.global_rounds.size() == 1);
  CHECK(r.global_rounds[0].best);
  CHECK(r.global_rounds[0].model == "global_round_1.safetensors");
  CHECK(r.global_rounds[0].figures == Figures{{"val_acc", 0.5}, {"round_seconds", 1.5}});

  REQUIRE(r.aggregator_rounds.size() == 1);
  CHECK(r.aggregator_rounds[0].figures == Figures{{"dp_epsilon", 2.5}});
  REQUIRE(r.failures.size() == 1);
  CHECK(r.failures[0] == "site-2 rank 1 killed by SIGKILL (restart)");
  CHECK(r.warnings == std::vector<std::string>{"no best model"});
  REQUIRE(r.end.has_value());
  CHECK(r.end->status == "failed");
  CHECK(r.end->reason == "site-2 gave up");
  CHECK(r.end->rounds_completed == 1);
  CHECK(r.unreadable_lines == 0);
}

TEST_CASE("a torn last line and a line missing its kind's keys are counted, the rest read") {
  TempFolder dir;
  const RunRecord r = read_run_record(metrics_with(
      dir, R"({"kind":"global","round":0,"best":false,"val_acc":0.1})" "\n"
           R"({"kind":"site","round":"one","site":"site-1"})" "\n"
           R"([1, 2])" "\n"
           R"({"kind":"global","round":1,"best":tr)"));
  CHECK(r.global_rounds.size() == 1);
  CHECK(r.site_rounds.empty());
  CHECK(r.unreadable_lines == 3);
  CHECK_FALSE(r.end.has_value());  // the run is going on, or was killed
}

TEST_CASE("lines of a kind the report does not draw are skipped without complaint") {
  TempFolder dir;
  const RunRecord r =
      read_run_record(metrics_with(dir, R"({"kind":"checkpoint","round":3})" "\n"));
  CHECK(r.unreadable_lines == 0);
  CHECK(r.global_rounds.empty());
}

TEST_CASE("a run folder without metrics.jsonl has an empty record") {
  TempFolder dir;
  const RunRecord r = read_run_record(dir / "metrics.jsonl");
  CHECK(r.site_rounds.empty());
  CHECK(r.global_rounds.empty());
  CHECK_FALSE(r.end.has_value());
  CHECK(r.unreadable_lines == 0);
}
