// The global figures of a model (sample-weighted means over sites) and the
// ranking that decides which model is best.
#include <doctest/doctest.h>

#include "server/evaluation_board.hpp"

using flare::server::EvaluationBoard;
using nlohmann::json;

namespace {

json evaluation(double accuracy, double loss, double samples) {
  return {{"validation", {{"accuracy", accuracy}, {"loss", loss}, {"num_samples", samples}}}};
}

}  // namespace

TEST_CASE("a model's figures are the sample-weighted means once every site reported") {
  EvaluationBoard board("val_acc");
  CHECK_FALSE(board.record(1, "a", evaluation(0.2, 2.0, 100), 2));
  const auto figures = board.record(1, "b", evaluation(0.6, 1.0, 300), 2);
  REQUIRE(figures);
  CHECK((*figures)["val_acc"].get<double>() == doctest::Approx(0.5));
  CHECK((*figures)["val_loss"].get<double>() == doctest::Approx(1.25));
}

TEST_CASE("a site's repeated report of one model counts once") {
  EvaluationBoard board("val_acc");
  CHECK_FALSE(board.record(1, "a", evaluation(0.2, 1, 100), 2));
  CHECK_FALSE(board.record(1, "a", evaluation(0.9, 1, 100), 2));
  const auto figures = board.record(1, "b", evaluation(0.4, 1, 100), 2);
  REQUIRE(figures);
  CHECK((*figures)["val_acc"].get<double>() == doctest::Approx(0.3));
}

TEST_CASE("each model's reports are collected apart") {
  EvaluationBoard board("val_acc");
  CHECK_FALSE(board.record(1, "a", evaluation(0.1, 1, 10), 2));
  CHECK_FALSE(board.record(2, "a", evaluation(0.9, 1, 10), 2));
  const auto second = board.record(2, "b", evaluation(0.7, 1, 10), 2);
  REQUIRE(second);
  CHECK((*second)["val_acc"].get<double>() == doctest::Approx(0.8));
}

TEST_CASE("a split without samples is left out of the means") {
  EvaluationBoard board("val_acc");
  json empty_test = evaluation(0.5, 1, 10);
  empty_test["test"] = {{"accuracy", 0.0}, {"num_samples", 0}};
  const auto figures = board.record(0, "a", empty_test, 1);
  REQUIRE(figures);
  CHECK_FALSE(figures->contains("test_acc"));
  CHECK(figures->contains("val_acc"));
}

TEST_CASE("evaluations are flattened to short metric names") {
  const json flat = flare::server::flatten_evaluation(
      {{"validation", {{"accuracy", 0.5}, {"loss", 1.0}, {"note", "text"}}},
       {"test", {{"accuracy", 0.25}}},
       {"ignored", 3}});
  CHECK(flat == json{{"val_acc", 0.5}, {"val_loss", 1.0}, {"test_acc", 0.25}});
}

TEST_CASE("a higher accuracy ranks better, and so does a lower loss") {
  CHECK(flare::server::higher_is_better("val_acc"));
  CHECK_FALSE(flare::server::higher_is_better("val_loss"));

  EvaluationBoard by_accuracy("val_acc");
  CHECK(by_accuracy.improves_best({{"val_acc", 0.5}}));
  CHECK_FALSE(by_accuracy.improves_best({{"val_acc", 0.4}}));
  CHECK_FALSE(by_accuracy.improves_best({{"val_acc", 0.5}}));  // a tie is not better
  CHECK(by_accuracy.improves_best({{"val_acc", 0.6}}));

  EvaluationBoard by_loss("val_loss");
  CHECK(by_loss.improves_best({{"val_loss", 2.0}}));
  CHECK_FALSE(by_loss.improves_best({{"val_loss", 3.0}}));
  CHECK(by_loss.improves_best({{"val_loss", 1.0}}));
}

TEST_CASE("key_metric_mode max or min ranks by the direction it names, whatever the name") {
  using flare::server::KeyMetricMode;
  EvaluationBoard lower_perplexity("val_perplexity", KeyMetricMode::Min);
  CHECK(lower_perplexity.improves_best({{"val_perplexity", 30.0}}));
  CHECK_FALSE(lower_perplexity.improves_best({{"val_perplexity", 40.0}}));
  CHECK(lower_perplexity.improves_best({{"val_perplexity", 20.0}}));

  EvaluationBoard higher_loss("val_loss", KeyMetricMode::Max);  // e.g. a negated loss
  CHECK(higher_loss.improves_best({{"val_loss", -3.0}}));
  CHECK_FALSE(higher_loss.improves_best({{"val_loss", -4.0}}));
  CHECK(higher_loss.improves_best({{"val_loss", -2.0}}));

  EvaluationBoard guessed("val_loss", KeyMetricMode::Auto);
  CHECK(guessed.improves_best({{"val_loss", 2.0}}));
  CHECK(guessed.improves_best({{"val_loss", 1.0}}));
}

TEST_CASE("the job spec's key_metric_mode names map to the ranking directions") {
  using flare::server::KeyMetricMode;
  using flare::server::key_metric_mode_named;
  CHECK(key_metric_mode_named("auto") == KeyMetricMode::Auto);
  CHECK(key_metric_mode_named("max") == KeyMetricMode::Max);
  CHECK(key_metric_mode_named("min") == KeyMetricMode::Min);
  CHECK_THROWS_WITH(key_metric_mode_named("down"),
                    "server.key_metric_mode: expected \"auto\", \"max\" or \"min\", found \"down\"");
}

TEST_CASE("a model without the key metric is never best") {
  EvaluationBoard board("test_acc");
  CHECK_FALSE(board.improves_best({{"val_acc", 0.9}}));
  CHECK(board.improves_best({{"test_acc", 0.1}}));
}
