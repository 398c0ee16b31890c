// The server of one job, wired as flare-run starts it: sites served over
// loopback through the transport's client, a whole job run to its files.
#include <doctest/doctest.h>

#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>

#include "server/federated_server.hpp"
#include "storage/safetensors.hpp"
#include "temp_folder.hpp"
#include "transport/server_connection.hpp"

using namespace flare;
namespace v1 = flare::transport::v1;

namespace {

jobspec::JobSpec two_site_job(const std::string& wire_dtype = "float32") {
  jobspec::JobSpec job;
  job.wire_dtype = wire_dtype;
  job.name = "served";
  job.num_rounds = 1;
  job.sites = {{.name = "site-1"}, {.name = "site-2"}};
  job.aggregator = {.name = "fedavg", .path = FLARE_FEDAVG_PLUGIN};
  job.server_port = 0;
  return job;
}

// A two-site, one-round job's server, its files in a temporary folder.
struct ServedJob {
  explicit ServedJob(const std::string& wire_dtype = "float32") : job(two_site_job(wire_dtype)) {}
  testing::TempFolder dir;
  jobspec::JobSpec job;
  std::ostringstream screen;
  server::ProgressDisplay display{screen, false, job.num_rounds};
  server::FederatedServer server{job, server::load_aggregator(job),
                                 {dir / "models", dir / "metrics.jsonl", dir / "server.log"},
                                 display};
};

std::vector<tensor::OwnedTensor> model_of(float value) {
  std::vector<tensor::OwnedTensor> t{{"w", {kDLFloat, 32, 1}, {1}, {}}};
  t[0].data.resize(sizeof(float));
  std::memcpy(t[0].data.data(), &value, sizeof(float));
  return t;
}

// Uploads an update whose model's one tensor "w" holds `value`.
void send(transport::ServerConnection& site, v1::UpdateHeader update, float value) {
  auto model = model_of(value);
  site.submit_update(update, tensor::views_of(model), {});
}

// Both sites register and site-1 sends the initial model: round 1 begins.
void begin_first_round(transport::ServerConnection& s1, transport::ServerConnection& s2) {
  s1.register_site(1);
  s2.register_site(1);
  REQUIRE(s1.next_task().task.kind() == v1::Task::SEND_INITIAL_MODEL);
  auto initial = model_of(1);
  s1.submit_initial_model(tensor::views_of(initial));
}

// The value of a model's one tensor "w".
float value_of(const std::vector<tensor::OwnedTensor>& model) {
  float w = 0;
  std::memcpy(&w, model.at(0).data.data(), sizeof(float));
  return w;
}

std::string eval_json(double accuracy) {
  return nlohmann::json{{"validation", {{"accuracy", accuracy}, {"num_samples", 10}}}}.dump();
}

}  // namespace

TEST_CASE("a job served to its sites writes every model, the best one and the metrics") {
  ServedJob served;
  auto& server = served.server;
  const auto& dir = served.dir;
  transport::ServerConnection s1(server.address(), "site-1"), s2(server.address(), "site-2");
  begin_first_round(s1, s2);
  float value = 2;
  for (auto* site : {&s1, &s2}) {
    REQUIRE(site->next_task().task.kind() == v1::Task::TRAIN);
    v1::UpdateHeader update;
    update.set_round(0);
    update.set_num_samples(10);
    update.set_eval_json(eval_json(0.1));
    send(*site, update, value += 2);  // 4 and 6
  }
  for (auto* site : {&s1, &s2}) {
    REQUIRE(site->next_task().task.kind() == v1::Task::EVALUATE);
    v1::Evaluation evaluation;
    evaluation.set_round(1);
    evaluation.set_eval_json(eval_json(0.8));
    site->submit_evaluation(evaluation);
  }
  const auto outcome = server.run([] {});
  CHECK(outcome.success);
  CHECK(s1.next_task().task.kind() == v1::Task::FINISH);

  for (const char* file : {"global_round_0.safetensors", "global_round_1.safetensors",
                           "best.safetensors"})
    CHECK_MESSAGE(std::filesystem::exists(dir / "models" / file), file);
  const auto best = storage::load_safetensors(dir / "models/best.safetensors");
  CHECK(best.metadata.at("round") == "1");
  std::ifstream metrics(dir / "metrics.jsonl");
  std::vector<std::string> kinds;
  for (std::string line; std::getline(metrics, line);)
    kinds.push_back(nlohmann::json::parse(line)["kind"]);
  CHECK(kinds == std::vector<std::string>{"site", "site", "global", "global", "job"});
  CHECK(std::filesystem::file_size(dir / "server.log") > 0);
  const auto figures = server.figures();
  REQUIRE(figures.size() == 2);
  CHECK(figures[1].best);
}

TEST_CASE("a job's wire dtype reaches its sites, and float32 values travel in it both ways") {
  ServedJob served("bfloat16");
  auto& server = served.server;
  transport::ServerConnection s1(server.address(), "site-1"), s2(server.address(), "site-2");
  begin_first_round(s1, s2);
  CHECK(s1.wire_encoding() == v1::BFLOAT16);
  // 1 + 2^-8 lies halfway between two bfloat16 values: it travels as 1 (ties
  // to even), and 3 + 2^-6 as 3; their mean as it arrives is 2, not 2.00586.
  const float values[] = {1.0f + 1.0f / 256, 3.0f + 1.0f / 64};
  for (int i = 0; i < 2; ++i) {
    auto* site = i == 0 ? &s1 : &s2;
    const auto task = site->next_task();
    REQUIRE(task.task.kind() == v1::Task::TRAIN);
    CHECK(value_of(task.model) == 1.0f);
    v1::UpdateHeader update;
    update.set_round(0);
    update.set_num_samples(10);
    send(*site, update, values[i]);
  }
  const auto evaluate = s1.next_task();
  REQUIRE(evaluate.task.kind() == v1::Task::EVALUATE);
  CHECK(value_of(evaluate.model) == 2.0f);
  server.abort("done");
}

TEST_CASE("a job whose aggregator cannot be loaded fails before the server exists") {
  auto job = two_site_job();
  job.aggregator.path = "/nonexistent/libflare_nothing.so";
  CHECK_THROWS_AS((void)server::load_aggregator(job), host::PluginLoadError);
}

TEST_CASE("a server that is aborted ends its job with the reason and tells the sites") {
  ServedJob served;
  auto& server = served.server;
  const auto outcome = server.run([&] { server.abort("interrupted"); });
  CHECK_FALSE(outcome.success);
  CHECK(outcome.failure == "interrupted");
  transport::ServerConnection s1(server.address(), "site-1");
  s1.register_site(1);  // a site starting late still learns why the job ended
  const auto task = s1.next_task().task;
  CHECK(task.kind() == v1::Task::FINISH);
  CHECK(task.reason() == "interrupted");
}

TEST_CASE("a server that cannot write a model fails the job as its own failure and tells every "
          "site the job ended") {
  ServedJob served;
  auto& server = served.server;
  transport::ServerConnection s1(server.address(), "site-1"), s2(server.address(), "site-2");
  begin_first_round(s1, s2);
  // Every later model write fails, as on a full disk.
  std::filesystem::remove_all(served.dir / "models");
  std::ofstream(served.dir / "models") << "not a folder\n";
  v1::UpdateHeader update;
  update.set_round(0);
  update.set_num_samples(10);
  REQUIRE(s1.next_task().task.kind() == v1::Task::TRAIN);
  send(s1, update, 2);
  REQUIRE(s2.next_task().task.kind() == v1::Task::TRAIN);
  // The last update completes the round; saving its model fails.
  CHECK_THROWS_AS(send(s2, update, 2), transport::JobEndedError);
  const auto started = std::chrono::steady_clock::now();
  const auto outcome = server.run([&] {
    if (std::chrono::steady_clock::now() - started > std::chrono::seconds(10))
      server.abort("the server did not end the job by itself");
  });
  CHECK_FALSE(outcome.success);
  CHECK(outcome.failure.starts_with("the server failed: "));
  CHECK(outcome.failure.find((served.dir / "models").string()) != std::string::npos);
  // What sites send after the end is not refused as theirs: the job is over.
  CHECK_THROWS_AS(send(s1, update, 2), transport::JobEndedError);
  const auto task = s1.next_task().task;
  CHECK(task.kind() == v1::Task::FINISH);
  CHECK(task.reason() == outcome.failure);
}

namespace {

// A two-site job of `rounds` rounds writing round checkpoints in `dir`;
// `resume`: the server goes on after the newest good one there.
struct CheckpointedJob {
  CheckpointedJob(const std::filesystem::path& dir, int rounds, bool resume)
      : job(with_rounds(rounds)),
        server(job, server::load_aggregator(job),
               {.models_dir = dir / "models",
                .metrics_file = dir / "metrics.jsonl",
                .log_file = dir / "server.log",
                .checkpoint_dir = dir / "checkpoints"},
               display, std::nullopt, resume) {}
  static jobspec::JobSpec with_rounds(int rounds) {
    auto job = two_site_job();
    job.num_rounds = rounds;
    return job;
  }
  jobspec::JobSpec job;
  std::ostringstream screen;
  server::ProgressDisplay display{screen, false, job.num_rounds};
  server::FederatedServer server;
};

// Both sites train round `round` from the model they are sent; returns its value.
float train_round(transport::ServerConnection& s1, transport::ServerConnection& s2, int64_t round) {
  float received = 0;
  for (auto* site : {&s1, &s2}) {
    auto task = site->next_task();
    REQUIRE(task.task.kind() == v1::Task::TRAIN);
    REQUIRE(task.task.round() == round);
    received = value_of(task.model);
    v1::UpdateHeader update;
    update.set_round(round);
    update.set_num_samples(10);
    send(*site, update, received + (site == &s1 ? 1.0f : 3.0f));
  }
  return received;
}

}  // namespace

TEST_CASE("a resumed server refuses a corrupted newest checkpoint, says why, and goes on from the one before") {
  testing::TempFolder dir;
  {
    CheckpointedJob first(dir.path(), 3, false);
    transport::ServerConnection s1(first.server.address(), "site-1"),
        s2(first.server.address(), "site-2");
    begin_first_round(s1, s2);
    CHECK(train_round(s1, s2, 0) == 1);  // model 1 = 1 + mean(1, 3) = 3
    CHECK(train_round(s1, s2, 1) == 3);  // model 2 = 5
  }  // the server is gone after round 2
  const auto newest = dir / "checkpoints/checkpoint_round_2.ckpt";
  REQUIRE(std::filesystem::exists(newest));
  {
    std::fstream file(newest, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(static_cast<std::streamoff>(std::filesystem::file_size(newest) / 2));
    file.put('\x7f');  // a flipped byte in the middle: the model's, or its header's
  }
  CheckpointedJob resumed(dir.path(), 3, true);
  transport::ServerConnection s1(resumed.server.address(), "site-1"),
      s2(resumed.server.address(), "site-2");
  s1.register_site(1);
  s2.register_site(1);
  // Round 2 again, from model 1: the corrupted round-2 checkpoint was never loaded.
  CHECK(train_round(s1, s2, 1) == 3);
  CHECK(train_round(s1, s2, 2) == 5);
  CHECK(resumed.screen.str().find("checkpoint refused: checkpoint_round_2.ckpt") !=
        std::string::npos);
  CHECK(resumed.screen.str().find("resuming after round 1") != std::string::npos);
  std::ifstream metrics(dir / "metrics.jsonl");
  std::optional<nlohmann::json> resumed_line;
  for (std::string line; std::getline(metrics, line);) {
    auto record = nlohmann::json::parse(line);
    if (record["kind"] == "resumed") resumed_line = record;
  }
  REQUIRE(resumed_line);
  CHECK((*resumed_line)["after_round"] == 1);
  CHECK((*resumed_line)["refused"].size() == 1);
}

TEST_CASE("resuming where there is no checkpoint says so, naming the folder") {
  testing::TempFolder dir;
  try {
    CheckpointedJob resumed(dir.path(), 2, true);
    FAIL("resumed from nothing");
  } catch (const server::NothingToResume& e) {
    CHECK(std::string(e.what()).find("no checkpoint in " + (dir / "checkpoints").string()) !=
          std::string::npos);
  }
}
