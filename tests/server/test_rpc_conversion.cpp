// The protocol's messages to and from the domain (the models they announce
// stream separately: transport/model_stream's tests).
#include <doctest/doctest.h>

#include <cstring>
#include <limits>

#include "server/rpc_conversion.hpp"

using namespace flare;
using server::v1::Task;

namespace {

std::vector<tensor::OwnedTensor> tensors_of(std::vector<float> values, const std::string& name) {
  std::vector<tensor::OwnedTensor> t{
      {name, {kDLFloat, 32, 1}, {static_cast<int64_t>(values.size())}, {}}};
  t[0].data.resize(values.size() * sizeof(float));
  std::memcpy(t[0].data.data(), values.data(), t[0].data.size());
  return t;
}

server::GlobalModelPtr global_model(int64_t round, std::vector<float> values) {
  return std::make_shared<const server::GlobalModel>(round, tensors_of(std::move(values), "w"));
}

}  // namespace

TEST_CASE("an update's fields reach the domain") {
  server::v1::UpdateHeader u;
  u.set_site("site-1");
  u.set_round(3);
  u.set_generation(2);
  u.set_num_samples(640);
  u.set_num_steps(10);
  u.set_train_seconds(1.5);
  u.set_train_metrics_json(R"({"train_loss": 0.5})");
  u.set_eval_json(R"({"validation": {"accuracy": 0.25, "num_samples": 100}})");
  u.set_meta_json(R"({"data": "generated"})");
  u.set_num_weights(2);
  u.set_num_aux(1);

  const server::SiteUpdate d = server::from_wire(u);
  CHECK(d.site == "site-1");
  CHECK(d.round == 3);
  CHECK(d.generation == 2);
  CHECK(d.num_samples == 640);
  CHECK(d.num_steps == 10);
  CHECK(d.train_seconds == 1.5);
  CHECK(d.train_metrics == nlohmann::json{{"train_loss", 0.5}});
  CHECK(d.evaluation["validation"]["accuracy"] == 0.25);
  CHECK(d.meta == nlohmann::json{{"data", "generated"}});
  CHECK(d.num_weights == 2);  // the tensors that stream after it
  CHECK(d.num_aux == 1);
  CHECK(d.weights.empty());
}

TEST_CASE("JSON fields left empty become empty objects") {
  server::v1::UpdateHeader u;
  u.set_site("site-1");
  const auto d = server::from_wire(u);
  CHECK(d.train_metrics == nlohmann::json::object());
  CHECK(d.evaluation == nlohmann::json::object());
  CHECK(d.meta == nlohmann::json::object());
}

TEST_CASE("malformed JSON is refused, naming the field and the site") {
  server::v1::UpdateHeader u;
  u.set_site("site-4");
  u.set_eval_json("{\"validation\": ");
  try {
    (void)server::from_wire(u);
    FAIL("expected a RejectedRequest");
  } catch (const server::RejectedRequest& e) {
    const std::string what = e.what();
    CHECK_MESSAGE(what.find("eval_json") != std::string::npos, what);
    CHECK_MESSAGE(what.find("site-4") != std::string::npos, what);
  }
  server::v1::Evaluation e;
  e.set_site("site-4");
  e.set_eval_json("not json");
  CHECK_THROWS_AS((void)server::from_wire(e), server::RejectedRequest);
}

TEST_CASE("registration, initial model, evaluation, progress and failure reach the domain") {
  server::v1::RegisterRequest r;
  r.set_site("s");
  r.set_world_size(4);
  const auto join = server::from_wire(r);
  CHECK((join.site == "s" && join.world_size == 4));

  server::v1::InitialModelHeader m;
  m.set_site("s");
  m.set_generation(1);
  auto w = tensors_of({5, 6, 7}, "w");
  const auto initial = server::from_wire(m, w);
  CHECK(initial.generation == 1);
  REQUIRE(initial.weights.size() == 1);
  CHECK(initial.weights[0].data == w[0].data);

  server::v1::Evaluation e;
  e.set_site("s");
  e.set_round(5);
  e.set_generation(1);
  e.set_eval_json(R"({"test": {"accuracy": 1}})");
  const auto evaluation = server::from_wire(e);
  CHECK((evaluation.round == 5 && evaluation.generation == 1));
  CHECK(evaluation.evaluation["test"]["accuracy"] == 1);

  server::v1::Progress p;
  p.set_site("s");
  p.set_round(2);
  p.set_phase("train");
  p.set_epoch(1);
  p.set_step(3);
  p.set_total(9);
  p.set_generation(1);
  const auto progress = server::from_wire(p);
  CHECK((progress.phase == "train" && progress.round == 2 && progress.epoch == 1 &&
         progress.step == 3 && progress.total == 9 && progress.generation == 1));

  server::v1::Failure f;
  f.set_site("s");
  f.set_rank(3);
  f.set_cause("killed");
  f.set_log_tail("tail");
  f.set_generation(1);
  f.set_restarting(true);
  f.set_restarts_left(2);
  f.set_node_rank(1);
  f.set_in_collective(true);
  const auto failure = server::from_wire(f);
  CHECK((failure.rank == 3 && failure.cause == "killed" && failure.log_tail == "tail"));
  CHECK((failure.generation == 1 && failure.restarting && failure.restarts_left == 2));
  CHECK((failure.node_rank == 1 && failure.in_collective));
  CHECK((!failure.exit_code && !failure.signal && !failure.hang_s));  // the site did not say
}

TEST_CASE("a failure's cause as data reaches the domain: exit code, signal or hang") {
  server::v1::Failure f;
  f.set_exit_code(3);
  CHECK(server::from_wire(f).exit_code == 3);
  f.set_signal(9);  // one of: the last set wins
  CHECK((server::from_wire(f).signal == 9 && !server::from_wire(f).exit_code));
  f.set_hang_s(2.5);
  CHECK((server::from_wire(f).hang_s == 2.5 && !server::from_wire(f).signal));
}

TEST_CASE("a task's wire form carries its kind, round, number of rounds, reason and model size") {
  const auto finish =
      server::to_wire({.kind = server::TaskKind::Finish, .num_rounds = 4, .reason = "site-2 failed"});
  CHECK(finish.kind() == Task::FINISH);
  CHECK(finish.num_rounds() == 4);
  CHECK(finish.reason() == "site-2 failed");
  CHECK(finish.num_tensors() == 0);
  CHECK(server::to_wire({.kind = server::TaskKind::Wait}).kind() == Task::WAIT);
  CHECK(server::to_wire({.kind = server::TaskKind::SendInitialModel}).kind() ==
        Task::SEND_INITIAL_MODEL);
  const auto train = server::to_wire(
      {.kind = server::TaskKind::Train, .round = 2, .num_rounds = 4, .model = global_model(2, {1})});
  CHECK(train.kind() == Task::TRAIN);
  CHECK(train.round() == 2);
  CHECK(train.num_tensors() == 1);
  const auto evaluate = server::to_wire(
      {.kind = server::TaskKind::Evaluate, .round = 4, .num_rounds = 4, .model = global_model(4, {1})});
  CHECK(evaluate.kind() == Task::EVALUATE);
  CHECK(evaluate.round() == 4);
}

namespace {

// The message of the InvalidRequest that converting `message` throws.
template <class... Message>
std::string refusal(const Message&... message) {
  try {
    (void)server::from_wire(message...);
  } catch (const server::InvalidRequest& e) {
    return e.what();
  }
  FAIL("expected an InvalidRequest");
  return {};
}

}  // namespace

TEST_CASE("training metrics are finite numbers, and an evaluation is splits of them") {
  server::v1::UpdateHeader u;
  u.set_site("s");
  u.set_train_metrics_json(R"({"train_loss": "0.5"})");
  CHECK(refusal(u) == "train_metrics_json from s: 'train_loss' is \"0.5\", not a finite number");
  u.set_train_metrics_json(R"({"train_loss": null})");  // how JSON writers spell NaN
  CHECK(refusal(u) == "train_metrics_json from s: 'train_loss' is null, not a finite number");
  u.set_train_metrics_json(R"({"train_loss": 1e999})");  // infinite: no JSON reader takes it
  CHECK(refusal(u).find("malformed JSON in train_metrics_json from s") == 0);
  u.set_train_metrics_json("[0.5]");
  CHECK(refusal(u) == "train_metrics_json from s: is not a JSON object");
  u.set_train_metrics_json(R"({"train_loss": 0.5})");
  u.set_eval_json(R"({"validation": 0.5})");
  CHECK(refusal(u) == "eval_json 'validation' from s: is 0.5, not an object");
  u.set_eval_json(R"({"validation": {"accuracy": [1]}})");
  CHECK(refusal(u) == "eval_json 'validation' from s: 'accuracy' is an array, not a finite number");
  u.set_eval_json(R"({"test": {"accuracy": 1, "num_samples": -3}})");
  CHECK(refusal(u).find("eval_json 'test' num_samples from s: -3") == 0);
  server::v1::Evaluation e;
  e.set_site("s");
  e.set_eval_json(R"({"test": {"num_samples": "10"}})");
  CHECK(refusal(e) == "eval_json 'test' from s: 'num_samples' is \"10\", not a finite number");
}

TEST_CASE("counts and durations are refused when negative, NaN or infinite") {
  server::v1::UpdateHeader u;
  u.set_site("s");
  u.set_num_steps(-1);
  CHECK(refusal(u) == "num_steps from s: -1 is below 0");
  u.set_num_steps(1);
  u.set_train_seconds(std::numeric_limits<double>::quiet_NaN());
  CHECK(refusal(u).find("train_seconds from s: nan is not a finite number >= 0") == 0);
  u.set_train_seconds(1);
  u.set_round(-2);
  CHECK(refusal(u) == "round from s: -2 is below 0");
  server::v1::RegisterRequest r;
  r.set_site("s");
  CHECK(refusal(r) == "world_size from s: 0 is below 1");
  server::v1::Failure f;
  f.set_site("s");
  f.set_rank(-1);
  CHECK(refusal(f) == "rank from s: -1 is below 0");
  f.set_rank(0);
  f.set_hang_s(std::numeric_limits<double>::infinity());
  CHECK(refusal(f).find("hang_s from s: inf is not a finite number") == 0);
  server::v1::Progress p;
  p.set_site("s");
  p.set_total(-10);
  CHECK(refusal(p) == "total from s: -10 is below 0");
}

TEST_CASE("an initial model must be one the model files can hold") {
  server::v1::InitialModelHeader m;
  m.set_site("s");
  std::vector<tensor::OwnedTensor> tensors;
  CHECK(refusal(m, tensors) == "initial model from s: has no tensors");
  tensors = tensors_of({1}, "w");
  tensors.push_back(tensors[0]);
  CHECK(refusal(m, tensors) == "initial model tensor 'w' from s: appears twice");
  tensors[1].name = "__metadata__";
  CHECK(refusal(m, tensors) ==
        "initial model tensor '__metadata__' from s: has the name model files keep for metadata");
  tensors[1].name = "c";
  tensors[1].dtype.code = kDLComplex;  // complex32: 4 bytes, as sent
  CHECK(refusal(m, tensors).find("initial model tensor 'c' from s: cannot be a model file's") == 0);
}

TEST_CASE("text a site sends arrives printable, and free-form JSON may not nest without end") {
  server::v1::Failure f;
  f.set_site("s");
  f.set_cause("boom\r\x1b[2K");
  f.set_log_tail("one\ntwo\x1b[1A\n");
  const auto failure = server::from_wire(f);
  CHECK(failure.cause == "boom\\x0d\\x1b[2K");
  CHECK(failure.log_tail == "one\ntwo\\x1b[1A\n");
  server::v1::Progress p;
  p.set_site("s\x1b");
  p.set_phase("train\n");
  const auto progress = server::from_wire(p);
  CHECK(progress.site == "s\\x1b");  // no job has such a site: refused by name, printably
  CHECK(progress.phase == "train\\x0a");
  server::v1::UpdateHeader u;
  u.set_site("s");
  u.set_meta_json(R"({"data": "cifar10\u001b[31m", "ok": [1, {"x\r": "y"}]})");
  CHECK(server::from_wire(u).meta ==
        nlohmann::json{{"data", "cifar10\\x1b[31m"}, {"ok", {1, {{"x\\x0d", "y"}}}}});
  u.set_meta_json(std::string(5000, '[') + std::string(5000, ']'));
  CHECK(refusal(u) == "meta_json from s: is not a JSON object");
  u.set_meta_json("{\"a\": " + std::string(5000, '[') + std::string(5000, ']') +
                                   "}");
  CHECK(refusal(u) == "meta_json from s: nests deeper than 32 levels");
}

TEST_CASE("a metric batch is bounded, its names checked, and a value that is not finite dropped") {
  server::v1::MetricBatch b;
  b.set_site("s");
  auto* p = b.add_points();
  p->set_name("train_loss");
  p->set_value(1.25);
  p->set_step(50);
  p->set_round(2);
  p->set_epoch(1);
  auto* nan = b.add_points();
  nan->set_name("train_loss");
  nan->set_value(std::numeric_limits<double>::quiet_NaN());
  nan->set_step(100);
  const server::SiteMetrics m = server::from_wire(b);
  REQUIRE(m.points.size() == 1);
  CHECK(m.points[0].name == "train_loss");
  CHECK(m.points[0].value == 1.25);
  CHECK(m.points[0].step == 50);
  CHECK(m.points[0].round == 2);
  CHECK(m.points[0].epoch == 1);
  REQUIRE(m.dropped.size() == 1);
  CHECK(m.dropped[0] == "train_loss = nan at step 100");

  nan->set_name("");
  CHECK(refusal(b) == "metric name from s: '' is not 1 to 128 bytes long");
  nan->set_name(std::string(129, 'x'));
  CHECK(refusal(b).find("metric name from s: 'xxxx") == 0);
  nan->set_name("ok");
  nan->set_step(-1);
  CHECK(refusal(b) == "step from s: -1 is below 0");
  nan->set_step(0);
  for (int i = 0; i < server::kMaxMetricPoints; ++i) *b.add_points() = *p;
  CHECK(refusal(b) == "points from s: 4098 points in one batch (at most 4096)");
}
