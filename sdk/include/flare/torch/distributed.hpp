// Data parallelism over the host's collectives: collective helpers and what
// DistributedSampler does in PyTorch, for a trainer that owns no process group
// (DistributedDataParallel itself is data_parallel.hpp). Every function here is collective where it says so: all ranks of the
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

// In place, through the host, in ONE broadcast whatever their number, dtypes
// and shapes: their bytes travel back to back in one buffer (one collective
// instead of one per tensor). All on one device. Collective.
inline void broadcast_packed(const Host& host, const std::vector<torch::Tensor>& tensors,
                             int32_t root_rank) {
  if (tensors.empty()) return;
  std::vector<torch::Tensor> bytes;
  bytes.reserve(tensors.size());
  for (const torch::Tensor& t : tensors)
    bytes.push_back(t.contiguous().reshape({-1}).view(torch::kUInt8));
  torch::Tensor packed = torch::cat(bytes);
  broadcast(host, packed, root_rank);
  int64_t offset = 0;
  for (const torch::Tensor& t : tensors) {
    const int64_t n = t.numel() * static_cast<int64_t>(t.element_size());
    torch::Tensor target = t.is_contiguous() ? t : t.contiguous();
    target.reshape({-1}).view(torch::kUInt8).copy_(packed.narrow(0, offset, n));
    if (!target.is_same(t)) t.copy_(target);
    offset += n;
  }
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

}  // namespace flare::torch_sdk
