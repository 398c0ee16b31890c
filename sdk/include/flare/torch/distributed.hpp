// Data parallelism over the host's collectives: what DistributedSampler and
// DistributedDataParallel do in PyTorch, for a trainer that owns no process
// group. Every function here is collective where it says so: all ranks of the
// worker group call it in the same order. Header-only; part of the C++ SDK.
#pragma once

#include <flare/torch/tensor_views.hpp>

#include <ATen/CPUGeneratorImpl.h>

#include <cstdint>
#include <vector>

namespace flare::torch_sdk {

// In place, through the host (a no-op on a group of one). Collective.
inline void all_reduce(const Host& host, torch::Tensor& t, flare_reduce_op op = FLARE_REDUCE_SUM) {
  TORCH_CHECK(t.is_contiguous(), "all_reduce needs a contiguous tensor");
  std::vector<int64_t> shape = t.sizes().vec();
  DLTensor dl = to_dl_view(t, shape.data());
  host.all_reduce(dl, op);
}

// In place, through the host. Collective.
inline void broadcast(const Host& host, torch::Tensor& t, int32_t root_rank) {
  TORCH_CHECK(t.is_contiguous(), "broadcast needs a contiguous tensor");
  std::vector<int64_t> shape = t.sizes().vec();
  DLTensor dl = to_dl_view(t, shape.data());
  host.broadcast(dl, root_rank);
}

// The sample indices (int64) `rank` visits in one epoch over `n` samples, as
// torch.utils.data.DistributedSampler(shuffle, drop_last=False) picks them: a
// permutation seeded by seed + epoch (identical on every rank), padded by
// wrapping around to a multiple of world_size, every world_size-th index from
// `rank` on. All ranks get the same count, so they take the same number of
// steps and meet at every collective. The padding repeats at most
// world_size - 1 samples per epoch.
inline torch::Tensor epoch_shard(int64_t n, int rank, int world_size, uint64_t seed,
                                 int64_t epoch, bool shuffle = true) {
  if (n <= 0) return torch::empty({0}, torch::kLong);
  torch::Tensor order;
  if (shuffle) {
    auto generator = at::make_generator<at::CPUGeneratorImpl>(seed + static_cast<uint64_t>(epoch));
    order = torch::randperm(n, generator, torch::kLong);
  } else {
    order = torch::arange(n, torch::kLong);
  }
  const int64_t per_rank = (n + world_size - 1) / world_size;
  const int64_t padded = per_rank * world_size;
  if (padded > n) {
    const int64_t repeats = (padded - n + n - 1) / n;
    order = torch::cat({order, order.repeat({repeats}).slice(0, 0, padded - n)});
  }
  return order.slice(0, rank, padded, world_size);
}

// Every world_size-th index from `rank` on: an exact, unpadded shard for
// evaluation (the shards' union is every sample once).
inline torch::Tensor strided_shard(int64_t n, int rank, int world_size) {
  if (rank >= n) return torch::empty({0}, torch::kLong);
  return torch::arange(rank, n, world_size, torch::kLong);
}

// DDP's gradient synchronisation: after backward(), every gradient is copied
// into one persistent flat buffer, the buffer is summed across the group in ONE
// all-reduce, divided by the world size and copied back, so every rank steps
// its optimizer with the gradient of the whole (global) batch.
//
// The buffer carries one more element: a stop flag. A rank that wants to stop
// (the host asked it to cancel) sets it, and because the flag travels in the
// same all-reduce, every rank learns it at the same step: they stop together
// instead of leaving the others waiting in the next collective.
class GradientAverager {
 public:
  GradientAverager() = default;
  // `parameters`: the trainable ones, in the same order on every rank, all of
  // one floating dtype and on one device.
  explicit GradientAverager(std::vector<torch::Tensor> parameters)
      : parameters_(std::move(parameters)) {
    int64_t numel = 0;
    for (const torch::Tensor& p : parameters_) {
      if (p.scalar_type() != parameters_.front().scalar_type() ||
          p.device() != parameters_.front().device())
        throw Error(FLARE_ERROR_UNSUPPORTED,
                    "gradient averaging needs all parameters of one dtype and device");
      numel += p.numel();
    }
    numel_ = numel;
    if (!parameters_.empty())
      flat_ = torch::zeros({numel + 1}, parameters_.front().options().requires_grad(false));
  }

  // Collective. Averages the gradients across the group in place (a group of
  // one skips the copies); returns true when any rank passed stop = true.
  bool average(const Host& host, int world_size, bool stop = false) {
    if (world_size <= 1) return stop;
    if (!flat_.defined()) flat_ = torch::zeros({1}, torch::kFloat);
    torch::NoGradGuard no_grad;
    int64_t offset = 0;
    for (const torch::Tensor& p : parameters_) {
      const int64_t n = p.numel();
      torch::Tensor slot = flat_.narrow(0, offset, n);
      if (p.grad().defined())
        slot.copy_(p.grad().reshape({n}));
      else
        slot.zero_();  // unused in this rank's forward: it contributes nothing
      offset += n;
    }
    flat_[numel_] = stop ? 1.0 : 0.0;
    all_reduce(host, flat_);
    const bool any_stop = flat_[numel_].item<double>() > 0.0;
    flat_.narrow(0, 0, numel_).div_(static_cast<double>(world_size));
    offset = 0;
    for (torch::Tensor& p : parameters_) {
      const int64_t n = p.numel();
      torch::Tensor slot = flat_.narrow(0, offset, n);
      if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
      p.mutable_grad().copy_(slot.view_as(p));
      offset += n;
    }
    return any_stop;
  }

 private:
  std::vector<torch::Tensor> parameters_;
  int64_t numel_ = 0;
  torch::Tensor flat_;
};

}  // namespace flare::torch_sdk
