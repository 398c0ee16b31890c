// The SDK's data parallelism (flare/torch/distributed.hpp, data.hpp) over the
// worker's real c10d collectives: the distributed sampler, the federated site
// split, and gradient averaging that makes N ranks step like one.
#include <flare/torch/data.hpp>
#include <flare/torch/distributed.hpp>

#include "in_process_host.hpp"
#include "rank_threads.hpp"

#include <doctest/doctest.h>

#include <set>
#include <vector>

namespace sdk = flare::torch_sdk;
using flare::testing::InProcessHost;

namespace {

std::vector<int64_t> to_vector(const torch::Tensor& t) {
  const torch::Tensor c = t.contiguous();
  return {c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel()};
}

torch::nn::Sequential small_model() {
  return torch::nn::Sequential(torch::nn::Linear(6, 5), torch::nn::ReLU(),
                               torch::nn::Linear(5, 3));
}

void copy_parameters(const torch::nn::Module& from, torch::nn::Module& to) {
  torch::NoGradGuard no_grad;
  const auto source = from.parameters();
  auto target = to.parameters();
  for (std::size_t i = 0; i < source.size(); ++i) target[i].copy_(source[i]);
}

// Two SGD steps with momentum on `inputs`/`targets`; rank r of `world` takes
// rows r, r + world, ... of each batch and averages gradients through `host`.
void two_steps(torch::nn::Sequential& model, const flare::Host& host, int rank, int world,
               const torch::Tensor& inputs, const torch::Tensor& targets) {
  torch::optim::SGD optimizer(model->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
  sdk::GradientAverager averager(model->parameters());
  for (int step = 0; step < 2; ++step) {
    const torch::Tensor rows = sdk::strided_shard(inputs.size(1), rank, world);
    const torch::Tensor x = inputs[step].index_select(0, rows);
    const torch::Tensor y = targets[step].index_select(0, rows);
    optimizer.zero_grad();
    torch::nn::functional::cross_entropy(model->forward(x), y).backward();
    averager.average(host, world);
    optimizer.step();
  }
}

}  // namespace

TEST_CASE("epoch_shard gives every rank an equal, disjoint share padded by wrapping around") {
  const int64_t n = 10;
  std::vector<int64_t> seen;
  for (int rank = 0; rank < 3; ++rank) {
    const auto mine = to_vector(sdk::epoch_shard(n, rank, 3, /*seed=*/7, /*epoch=*/0));
    CHECK(mine.size() == 4);  // ceil(10 / 3)
    seen.insert(seen.end(), mine.begin(), mine.end());
  }
  const std::set<int64_t> distinct(seen.begin(), seen.end());
  CHECK(distinct.size() == 10);  // every sample; the 2 extra are repeats
  CHECK(seen.size() == 12);
}

TEST_CASE("epoch_shard is the same permutation on every call for an epoch and new for the next") {
  CHECK(to_vector(sdk::epoch_shard(50, 1, 2, 3, 4)) == to_vector(sdk::epoch_shard(50, 1, 2, 3, 4)));
  CHECK(to_vector(sdk::epoch_shard(50, 1, 2, 3, 4)) != to_vector(sdk::epoch_shard(50, 1, 2, 3, 5)));
  CHECK(sdk::epoch_shard(0, 0, 2, 3, 0).numel() == 0);
}

TEST_CASE("strided_shard splits evaluation exactly, without padding") {
  CHECK(to_vector(sdk::strided_shard(5, 0, 2)) == std::vector<int64_t>{0, 2, 4});
  CHECK(to_vector(sdk::strided_shard(5, 1, 2)) == std::vector<int64_t>{1, 3});
  CHECK(sdk::strided_shard(1, 1, 2).numel() == 0);
}

TEST_CASE("site_split gives each site a disjoint, near-equal share split 80/20") {
  std::set<int64_t> all;
  std::vector<int64_t> sizes;
  for (int site = 0; site < 3; ++site) {
    const sdk::SiteSplit split = sdk::site_split(101, site, 3, /*seed=*/0, 0.2);
    sizes.push_back(split.train.numel() + split.validation.numel());
    for (const auto* part : {&split.train, &split.validation})
      for (int64_t i : to_vector(*part)) CHECK(all.insert(i).second);
  }
  CHECK(all.size() == 101);
  CHECK(sizes == std::vector<int64_t>{34, 34, 33});
  CHECK(sdk::site_split(101, 0, 3, 0, 0.2).train.numel() == 27);  // round(34 * 0.8)
  CHECK_THROWS_AS(sdk::site_split(10, 3, 3, 0, 0.2), flare::Error);
}

TEST_CASE("two ranks each on half of every batch step to the same weights as one rank on all") {
  torch::manual_seed(11);
  const torch::Tensor inputs = torch::randn({2, 8, 6});          // two batches of 8
  const torch::Tensor targets = torch::randint(0, 3, {2, 8}, torch::kLong);
  torch::nn::Sequential whole = small_model();
  std::vector<torch::nn::Sequential> halves{small_model(), small_model()};
  for (auto& half : halves) copy_parameters(*whole, *half);

  InProcessHost single;
  two_steps(whole, flare::Host(single.services()), 0, 1, inputs, targets);

  auto group = flare::testing::form_group(2);
  flare::testing::on_every_rank(2, [&](int r) {
    InProcessHost host(group[r].get());
    two_steps(halves[r], flare::Host(host.services()), r, 2, inputs, targets);
  });

  const auto expected = whole->parameters();
  for (const auto& half : halves) {
    const auto got = half->parameters();
    for (std::size_t i = 0; i < expected.size(); ++i) {
      const double diff = (got[i] - expected[i]).abs().max().item<double>();
      INFO("parameter " << i << " differs by " << diff);
      CHECK(diff < 1e-6);
    }
  }
}

TEST_CASE("a stop requested by one rank reaches every rank in the same gradient all-reduce") {
  auto group = flare::testing::form_group(2);
  const auto stopped = flare::testing::on_every_rank(2, [&](int r) {
    torch::nn::Linear layer(2, 1);
    layer->forward(torch::ones({1, 2})).sum().backward();
    InProcessHost host(group[r].get());
    sdk::GradientAverager averager(layer->parameters());
    return averager.average(flare::Host(host.services()), 2, /*stop=*/r == 1);
  });
  CHECK(stopped == std::vector<bool>{true, true});
}
