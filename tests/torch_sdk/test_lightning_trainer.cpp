// The SDK's LightningTrainer as a worker group runs it, ranks as threads over
// the real c10d collectives, with a tiny linear model: the distributed sampler
// on an uneven dataset, rank 0's initial state, gradient accumulation and
// metrics reduced by samples.
#include <flare/torch/lightning_trainer.hpp>

#include "in_process_host.hpp"
#include "rank_threads.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <memory>
#include <set>
#include <vector>

namespace sdk = flare::torch_sdk;
using flare::testing::InProcessHost;
using nlohmann::json;

namespace {

// Samples whose first feature is their index, so a test sees which were fed.
sdk::TensorDataset numbered_samples(int64_t n) {
  const torch::Tensor id = torch::arange(n, torch::kFloat32).unsqueeze(1);
  const torch::Tensor features = torch::sin(id * torch::tensor({1.0f, 0.7f, 1.3f, 2.1f}));
  return {torch::cat({id / 10, features.slice(1, 1)}, 1),
          torch::arange(n, torch::kLong).remainder(3)};
}

class TinyTrainer final : public sdk::LightningTrainer {
 public:
  TinyTrainer(const json& config, const flare::WorkerInfo& worker, flare::Host host,
              int64_t train_samples, int64_t validation_samples)
      : LightningTrainer(config, worker, host, {.batch_size = 2}),
        data_{numbered_samples(train_samples), numbered_samples(validation_samples), {}, {}} {}

  torch::nn::Module& model() override { return *net_; }
  std::unique_ptr<torch::optim::Optimizer> configure_optimizer() override {
    return std::make_unique<torch::optim::SGD>(net_->parameters(),
                                               torch::optim::SGDOptions(0.1).momentum(0.9));
  }
  sdk::DataSplits setup() override { return data_; }
  sdk::StepOutput training_step(const sdk::Batch& batch) override {
    const torch::Tensor ids = (batch.inputs.select(1, 0) * 10).round().to(torch::kLong);
    for (int64_t i = 0; i < ids.size(0); ++i) fed.push_back(ids[i].item<int64_t>());
    return sdk::classification_step(net_->forward(batch.inputs), batch.targets);
  }

  std::vector<float> flat_weights() {
    std::vector<float> out;
    for (const auto& w : weights()) {
      const auto* data = static_cast<const float*>(w.tensor.data);
      out.insert(out.end(), data, data + flare::num_elements(w.tensor));
    }
    return out;
  }

  std::vector<int64_t> fed;  // sample indices, in the order trained on

 private:
  torch::nn::Linear net_{4, 3};  // built after the base seeded the generator
  sdk::DataSplits data_;
};

flare::WorkerInfo rank_of(int rank, int world_size) {
  flare::WorkerInfo info;
  info.rank = rank;
  info.world_size = world_size;
  info.local_rank = rank;
  info.local_world_size = world_size;
  info.seed = 3;
  return info;
}

// One trainer per rank (built one after the other: the seeding is global), a
// host each over a group formed for them.
struct Ranks {
  std::vector<std::unique_ptr<flare::collectives::ProcessGroupCollectives>> group;
  std::vector<std::unique_ptr<InProcessHost>> hosts;
  std::vector<std::unique_ptr<TinyTrainer>> trainers;

  Ranks(int world_size, int64_t train_samples, int64_t validation_samples,
        const std::vector<json>& configs) {
    if (world_size > 1) group = flare::testing::form_group(world_size);
    for (int r = 0; r < world_size; ++r) {
      hosts.push_back(std::make_unique<InProcessHost>(world_size > 1 ? group[r].get() : nullptr));
      trainers.push_back(std::make_unique<TinyTrainer>(
          configs[static_cast<std::size_t>(r)], rank_of(r, world_size),
          flare::Host(hosts.back()->services()), train_samples, validation_samples));
    }
  }

  std::vector<flare::TrainOutput> train() {
    return flare::testing::on_every_rank(static_cast<int>(trainers.size()), [&](int r) {
      return trainers[r]->train(flare_round_info{sizeof(flare_round_info), 0, 1});
    });
  }
};

double max_difference(const std::vector<float>& a, const std::vector<float>& b) {
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    worst = std::max(worst, static_cast<double>(std::abs(a[i] - b[i])));
  return worst;
}

}  // namespace

TEST_CASE("seven samples over two ranks: both take the same steps and every sample is fed") {
  Ranks ranks(2, 7, 2, {json::object(), json::object()});
  const auto results = ranks.train();
  CHECK(results[0].num_steps == 2);  // ceil(ceil(7 / 2) / 2)
  CHECK(results[1].num_steps == 2);
  CHECK(results[0].num_samples == 7);
  std::set<int64_t> fed;
  for (const auto& trainer : ranks.trainers) fed.insert(trainer->fed.begin(), trainer->fed.end());
  CHECK(fed == std::set<int64_t>{0, 1, 2, 3, 4, 5, 6});
  CHECK(ranks.trainers[0]->fed.size() + ranks.trainers[1]->fed.size() == 8);  // one repeat
}

TEST_CASE("a rank that built other initial weights starts from rank 0's and ends identical") {
  Ranks ranks(2, 8, 2, {json::object(), json{{"seed", 99}}});
  REQUIRE(ranks.trainers[0]->flat_weights() != ranks.trainers[1]->flat_weights());
  ranks.train();
  CHECK(ranks.trainers[0]->flat_weights() == ranks.trainers[1]->flat_weights());
}

TEST_CASE("two ranks accumulating two micro-batches step like one rank on batches four times larger") {
  Ranks one(1, 16, 2, {json{{"batch_size", 8}}});
  Ranks two(2, 16, 2, std::vector<json>(2, json{{"accumulate_grad_batches", 2}}));
  const auto single = one.train();
  const auto accumulated = two.train();
  CHECK(single[0].num_steps == 2);
  CHECK(accumulated[0].num_steps == 2);
  const double diff =
      max_difference(one.trainers[0]->flat_weights(), two.trainers[0]->flat_weights());
  INFO("weights differ by " << diff);
  CHECK(diff < 1e-6);
  CHECK(max_difference(one.trainers[0]->flat_weights(), Ranks(1, 16, 2, {json::object()})
                                                             .trainers[0]->flat_weights()) > 1e-3);
}

TEST_CASE("evaluation over ranks with unequal shares is weighted by samples") {
  // Three validation samples: rank 0 evaluates two, rank 1 one.
  Ranks one(1, 4, 3, {json::object()});
  Ranks two(2, 4, 3, {json::object(), json::object()});
  const json whole = one.trainers[0]->evaluate("validation");
  const auto shared = flare::testing::on_every_rank(
      2, [&](int r) { return two.trainers[r]->evaluate("validation"); });
  CHECK(shared[0] == shared[1]);
  CHECK(shared[0]["num_samples"] == 3);
  CHECK(std::abs(shared[0]["loss"].get<double>() - whole["loss"].get<double>()) < 1e-6);
  CHECK(std::abs(shared[0]["accuracy"].get<double>() - whole["accuracy"].get<double>()) < 1e-9);
}

TEST_CASE("accumulate_grad_batches and bucket_cap_mb must be positive") {
  // Checked by the schema the glue applies before a trainer is built.
  const flare::ConfigSchema schema = TinyTrainer::config_schema();
  CHECK_THROWS_AS(schema.check(json{{"accumulate_grad_batches", 0}}), flare::Error);
  CHECK_THROWS_AS(schema.check(json{{"bucket_cap_mb", 0}}), flare::Error);
  CHECK_NOTHROW(schema.check(json{{"accumulate_grad_batches", 2}, {"bucket_cap_mb", 0.5}}));
}
