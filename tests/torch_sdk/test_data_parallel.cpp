// The SDK's data parallelism (flare/torch/distributed.hpp, data.hpp) over the
// worker's real c10d collectives: the distributed sampler, the federated site
// split, and DDP (bucketed all-reduce overlapped with backward) that makes N
// ranks step like one.
#include <flare/torch/data.hpp>
#include <flare/torch/data_parallel.hpp>
#include <flare/torch/distributed.hpp>
#include <flare/torch/flat_sgd.hpp>

#include "in_process_host.hpp"
#include "rank_threads.hpp"

#include <doctest/doctest.h>

#include <algorithm>
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

// Three SGD steps with momentum on `inputs`/`targets` (3 batches of 8); rank r
// of `world` takes rows r, r + world, ... of each batch and reduces gradients
// through `host` in buckets of `bucket_cap_mb`.
void three_steps(torch::nn::Sequential& model, const flare::Host& host, int rank, int world,
                 const torch::Tensor& inputs, const torch::Tensor& targets,
                 double bucket_cap_mb, std::size_t* buckets = nullptr,
                 torch::Device device = torch::kCPU) {
  model->to(device);
  sdk::DataParallel ddp(model->parameters(), host, world, bucket_cap_mb);
  if (buckets) *buckets = ddp.num_buckets();
  torch::optim::SGD optimizer(model->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
  for (int step = 0; step < 3; ++step) {
    const torch::Tensor rows = sdk::strided_shard(inputs.size(1), rank, world);
    const torch::Tensor x = inputs[step].index_select(0, rows).to(device);
    const torch::Tensor y = targets[step].index_select(0, rows).to(device);
    ddp.begin_micro_batch(/*first=*/true, /*sync=*/true);
    torch::nn::functional::cross_entropy(model->forward(x), y).backward();
    ddp.finish_step();
    optimizer.step();
  }
}

double max_difference(const torch::nn::Module& a, const torch::nn::Module& b) {
  double worst = 0;
  const auto pa = a.parameters(), pb = b.parameters();
  for (std::size_t i = 0; i < pa.size(); ++i)
    worst = std::max(worst, (pa[i].cpu() - pb[i].cpu()).abs().max().item<double>());
  return worst;
}

// Where the ranks of check_two_ranks_step_like_one run.
struct RankPlacement {
  bool cuda = false;
  // CUDA with two GPUs: rank r on cuda:r through NCCL. One GPU: NCCL refuses
  // two ranks on one device, so both share cuda:0 and reduce through Gloo,
  // which copies CUDA tensors through the host.
  bool two_gpus() const { return cuda && torch::cuda::device_count() >= 2; }
  torch::Device device(int rank) const {
    if (!cuda) return torch::kCPU;
    return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(two_gpus() ? rank : 0));
  }
};

// One rank on every row against two ranks on half each, through hosts of `abi`.
void check_two_ranks_step_like_one(flare::testing::HostAbi abi, RankPlacement place = {}) {
  torch::manual_seed(11);
  const torch::Tensor inputs = torch::randn({3, 8, 6});
  const torch::Tensor targets = torch::randint(0, 3, {3, 8}, torch::kLong);
  torch::nn::Sequential whole = small_model();
  std::vector<torch::nn::Sequential> halves{small_model(), small_model()};
  for (auto& half : halves) copy_parameters(*whole, *half);

  InProcessHost single;
  three_steps(whole, flare::Host(single.services()), 0, 1, inputs, targets, 25.0, nullptr,
              place.device(0));

  auto group = flare::testing::form_group(2, /*shared_memory=*/true,
                                          place.two_gpus() ? "nccl" : "gloo");
  std::vector<std::size_t> buckets(2);
  std::vector<int64_t> async(2);
  flare::testing::on_every_rank(2, [&](int r) {
    InProcessHost host(group[r].get(), abi);
    // 8 bytes: every parameter (the smallest holds 3 floats) closes a bucket.
    three_steps(halves[r], flare::Host(host.services()), r, 2, inputs, targets, 8e-6,
                &buckets[r], place.device(r));
    async[r] = host.async_reductions();
  });
  CHECK(buckets[0] == 4);
  const int64_t expected_async = abi == flare::testing::HostAbi::v1_1 ? 3 * 4 : 0;
  CHECK(async[0] == expected_async);
  for (const auto& half : halves) {
    const double diff = max_difference(*half, *whole);
    INFO("two ranks differ from one by " << diff);
    CHECK(diff < (place.cuda ? 1e-5 : 1e-6));
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

TEST_CASE("two ranks reducing in buckets while backward runs step like one rank on the whole batch") {
  check_two_ranks_step_like_one(flare::testing::HostAbi::v1_1);
}

TEST_CASE("on a host without the asynchronous all-reduce the buckets are reduced one by one") {
  check_two_ranks_step_like_one(flare::testing::HostAbi::v1_0);
}

// Runs where a CUDA LibTorch sees a GPU (scripts/gpu-check.sh); skipped elsewhere.
TEST_CASE("on CUDA two ranks step like one rank on the whole batch" *
          doctest::skip(!torch::cuda::is_available())) {
  check_two_ranks_step_like_one(flare::testing::HostAbi::v1_1, {.cuda = true});
}

TEST_CASE("the second layer's buckets are launched before backward reaches the first layer") {
  auto group = flare::testing::form_group(2);
  const auto launched_before_first_layer = flare::testing::on_every_rank(2, [&](int r) {
    torch::nn::Sequential model = small_model();
    InProcessHost host(group[r].get());
    sdk::DataParallel ddp(model->parameters(), flare::Host(host.services()), 2, 8e-6);
    // A tensor hook runs when the first layer's weight gradient has been
    // computed, before it is accumulated (and its bucket launched).
    int64_t seen = -1;
    model->parameters()[0].register_hook([&](const torch::Tensor&) {
      seen = host.async_reductions();
    });
    ddp.begin_micro_batch(true, true);
    model->forward(torch::ones({2, 6})).sum().backward();
    ddp.finish_step();
    CHECK(host.async_reductions() == 4);
    return seen;
  });
  // One bucket per parameter; the second layer's two are in flight already.
  for (int64_t seen : launched_before_first_layer) CHECK(seen >= 2);
}

TEST_CASE("a parameter one rank did not use contributes zeros instead of blocking the group") {
  auto group = flare::testing::form_group(2);
  const auto grads = flare::testing::on_every_rank(2, [&](int r) {
    torch::nn::Linear used(2, 1), unused(2, 1);
    std::vector<torch::Tensor> parameters = used->parameters();
    for (const auto& p : unused->parameters()) parameters.push_back(p);
    InProcessHost host(group[r].get());
    sdk::DataParallel ddp(parameters, flare::Host(host.services()), 2, 8e-6);
    ddp.begin_micro_batch(true, true);
    torch::Tensor loss = used->forward(torch::ones({1, 2})).sum();
    if (r == 0) loss = loss + unused->forward(torch::ones({1, 2})).sum();
    loss.backward();
    ddp.finish_step();
    return unused->bias.grad().item<double>();
  });
  CHECK(grads == std::vector<double>{0.5, 0.5});  // (1 + 0) / 2
}

TEST_CASE("broadcast_from_rank0 gives every rank rank 0's parameters and buffers") {
  auto group = flare::testing::form_group(2);
  const auto values = flare::testing::on_every_rank(2, [&](int r) {
    torch::nn::Linear layer(3, 2);
    torch::Tensor running = torch::full({2}, static_cast<double>(r));
    {
      torch::NoGradGuard no_grad;
      layer->weight.fill_(r + 1.0);
    }
    InProcessHost host(group[r].get());
    sdk::DataParallel ddp(layer->parameters(), flare::Host(host.services()), 2);
    ddp.broadcast_from_rank0({running});
    return std::make_pair(layer->weight.sum().item<double>(), running.sum().item<double>());
  });
  CHECK(values[1].first == 6.0);  // rank 0's 2x3 ones
  CHECK(values[1].second == 0.0);
  CHECK(values[0] == values[1]);
}

TEST_CASE("broadcast_from_rank0 sends buffers of every dtype and shape in one broadcast") {
  // What batch norm holds (float statistics, an int64 scalar count) and more:
  // a bool mask, a half tensor, a non-contiguous view, an empty one.
  auto group = flare::testing::form_group(3);
  const auto received = flare::testing::on_every_rank(3, [&](int r) {
    const double v = r == 0 ? 1.5 : -7.0;
    std::vector<torch::Tensor> buffers{
        torch::full({4}, v), torch::full({}, static_cast<int64_t>(r == 0 ? 42 : 3)),
        torch::full({3}, r == 0), torch::full({2, 3}, v, torch::kFloat16),
        torch::arange(6, torch::kFloat64).reshape({2, 3}).mul(r == 0 ? 1 : -1).t(),
        torch::empty({0, 2})};
    torch::nn::Linear layer(3, 2);
    InProcessHost host(group[r].get());
    sdk::DataParallel ddp(layer->parameters(), flare::Host(host.services()), 3);
    ddp.broadcast_from_rank0(buffers);
    CHECK(host.broadcasts() == 2);  // the flat parameters, then every buffer
    return buffers;
  });
  for (int r = 1; r < 3; ++r) {
    CAPTURE(r);
    for (std::size_t i = 0; i < received[0].size(); ++i) {
      CAPTURE(i);
      CHECK(received[r][i].dtype().name() == received[0][i].dtype().name());
      CHECK(received[r][i].sizes().vec() == received[0][i].sizes().vec());
      CHECK(torch::equal(received[r][i], received[0][i]));
    }
  }
  CHECK(received[2][1].item<int64_t>() == 42);
  CHECK(received[2][4][2][1].item<double>() == 5.0);  // the transposed view, written through
}

TEST_CASE("FlatSGD on the flat buffers updates like torch's SGD parameter by parameter") {
  torch::manual_seed(5);
  torch::nn::Sequential reference = small_model(), flat = small_model();
  copy_parameters(*reference, *flat);
  InProcessHost host;
  sdk::DataParallel ddp(flat->parameters(), flare::Host(host.services()), 1);
  const auto options = torch::optim::SGDOptions(0.05).momentum(0.9).weight_decay(0.01);
  torch::optim::SGD plain(reference->parameters(), options);
  sdk::FlatSGD fused(flat->parameters(), options);
  REQUIRE(fused.use_flat_buffers(ddp.flat_parameters(), ddp.flat_gradients()));
  for (int step = 0; step < 4; ++step) {
    const torch::Tensor x = torch::randn({4, 6});
    plain.zero_grad();
    reference->forward(x).pow(2).sum().backward();
    plain.step();
    ddp.begin_micro_batch(true, true);
    flat->forward(x).pow(2).sum().backward();
    ddp.finish_step();
    fused.step();
  }
  const double diff = max_difference(*reference, *flat);
  INFO("FlatSGD differs from SGD by " << diff);
  CHECK(diff < 1e-6);
  CHECK(max_difference(*reference, *small_model()) > 1e-3);  // it did train
}

TEST_CASE("a stop requested by one rank reaches every rank in the gradient all-reduce") {
  auto group = flare::testing::form_group(2);
  const auto stopped = flare::testing::on_every_rank(2, [&](int r) {
    torch::nn::Linear layer(2, 1);
    InProcessHost host(group[r].get());
    sdk::DataParallel ddp(layer->parameters(), flare::Host(host.services()), 2);
    ddp.begin_micro_batch(true, true, /*stop=*/r == 1);
    layer->forward(torch::ones({1, 2})).sum().backward();
    return ddp.finish_step();
  });
  CHECK(stopped == std::vector<bool>{true, true});
}
