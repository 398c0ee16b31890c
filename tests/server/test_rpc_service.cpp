// The gRPC edge on loopback, driven by the sites' own client
// (transport::ServerConnection): what a site receives is the global model
// byte for byte, and a refusal reaches the site with its reason.
#include <doctest/doctest.h>

#include "controller_job.hpp"
#include "server/rpc_service.hpp"
#include "storage/safetensors.hpp"
#include "transport/server_connection.hpp"

using namespace flare;
namespace v1 = flare::transport::v1;
using testing::ControllerJob;

namespace {

struct ServedJob : ControllerJob {
  explicit ServedJob(std::vector<std::string> sites, int num_rounds)
      : ControllerJob(sites, num_rounds) {
    for (const auto& s : sites)
      connections.push_back(std::make_unique<transport::ServerConnection>(rpc.address(), s));
  }
  server::RpcService service{controller};
  server::RpcServer rpc{service, "127.0.0.1", 0};
  std::vector<std::unique_ptr<transport::ServerConnection>> connections;

  // Uploads a model whose one tensor "w" holds `w`.
  static void send(transport::ServerConnection& c, v1::UpdateHeader header, float w) {
    auto t = weights(w);
    c.submit_update(header, tensor::views_of(t), {});
  }
  static void send_initial(transport::ServerConnection& c, float w) {
    auto t = weights(w);
    c.submit_initial_model(tensor::views_of(t));
  }
};

}  // namespace

TEST_CASE("every site receives the round's global model byte for byte") {
  ServedJob job({"s1", "s2", "s3"}, 2);
  for (auto& c : job.connections) CHECK(c->register_site(1).num_rounds() == 2);
  REQUIRE(job.connections[0]->next_task().task.kind() == v1::Task::SEND_INITIAL_MODEL);
  ServedJob::send_initial(*job.connections[0], 1.5f);

  for (int64_t round = 0; round < 2; ++round) {
    const auto model = storage::load_safetensors(job.models.global_path(round)).tensors;
    float w = 1;
    for (auto& c : job.connections) {
      const auto task = c->next_task();
      REQUIRE(task.task.kind() == v1::Task::TRAIN);
      CHECK(task.task.round() == round);
      const auto& received = task.model;
      REQUIRE(received.size() == model.size());
      CHECK(received[0].name == model[0].name);
      CHECK(received[0].shape == model[0].shape);
      CHECK(received[0].data == model[0].data);
      v1::UpdateHeader update;
      update.set_round(round);
      update.set_num_samples(10);
      ServedJob::send(*c, update, w++);
    }
  }
  const auto final_task = job.connections[2]->next_task();
  CHECK(final_task.task.kind() == v1::Task::EVALUATE);
  CHECK(ControllerJob::value_of(final_task.model) == doctest::Approx(2));
}

TEST_CASE("a refused update reaches the site with the reason") {
  ServedJob job({"s1"}, 1);
  job.connections[0]->register_site(1);
  REQUIRE(job.connections[0]->next_task().task.kind() == v1::Task::SEND_INITIAL_MODEL);
  ServedJob::send_initial(*job.connections[0], 0);
  v1::UpdateHeader early;  // no task was handed out yet
  early.set_round(0);
  CHECK_THROWS_WITH_AS(ServedJob::send(*job.connections[0], early, 1),
                       doctest::Contains("refused by the server: unexpected update from s1"),
                       transport::TransportError);
  v1::UpdateHeader malformed = early;
  malformed.set_train_metrics_json("{");
  CHECK_THROWS_WITH_AS(ServedJob::send(*job.connections[0], malformed, 1),
                       doctest::Contains("malformed JSON in train_metrics_json from s1"),
                       transport::TransportError);
}

TEST_CASE("a task request from a site the job does not know fails with the reason") {
  ServedJob job({"s1"}, 1);
  transport::ServerConnection stranger(job.rpc.address(), "s9");
  CHECK_THROWS_WITH_AS(stranger.next_task(), doctest::Contains("unknown site 's9'"),
                       transport::TransportError);
}
