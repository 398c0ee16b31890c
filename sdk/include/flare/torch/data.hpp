// In-memory datasets and the federated split of a sample pool into sites.
// Header-only; part of the C++ SDK.
#pragma once

#include <flare/plugin.hpp>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <string>

namespace flare::torch_sdk {

struct Batch {
  torch::Tensor inputs;
  torch::Tensor targets;
  int64_t size() const { return targets.size(0); }
};

// A dataset held as two tensors whose first dimension is the sample. Kept on
// the CPU; the trainer moves each batch to its device.
struct TensorDataset {
  torch::Tensor inputs;
  torch::Tensor targets;

  int64_t size() const { return inputs.defined() ? inputs.size(0) : 0; }
  Batch batch(const torch::Tensor& indices) const {
    return {inputs.index_select(0, indices), targets.index_select(0, indices)};
  }
  // Like batch(), gathered into `scratch`'s memory, which is reused from call
  // to call (no allocation per step); valid until the next call with it.
  const Batch& batch_into(const torch::Tensor& indices, Batch& scratch) const {
    if (!scratch.inputs.defined())
      scratch = {torch::empty({0}, inputs.options()), torch::empty({0}, targets.options())};
    torch::index_select_out(scratch.inputs, inputs, 0, indices);
    torch::index_select_out(scratch.targets, targets, 0, indices);
    return scratch;
  }
};

// The indices (int64) of one site's share of a pool of `n` samples.
struct SiteSplit {
  torch::Tensor train;
  torch::Tensor validation;
};

// Like bench/torch_reference.py's client_split: the pool is shuffled once with
// `seed` (the same on every site and rank), cut into `num_sites` disjoint,
// near-equal shards (the first n % num_sites one sample longer, as
// numpy.array_split does), and shard `site_index` is split into its first
// round((1 - val_fraction) * size) samples for training and the rest for
// validation. The permutation comes from LibTorch's generator, not NumPy's, so
// the indices differ from the Python reference's; the sizes are the same.
inline SiteSplit site_split(int64_t n, int site_index, int num_sites, uint64_t seed,
                            double val_fraction) {
  if (num_sites < 1 || site_index < 0 || site_index >= num_sites)
    throw Error(FLARE_ERROR_INVALID_ARGUMENT, "site index " + std::to_string(site_index) +
                                                  " is not in [0, " + std::to_string(num_sites) +
                                                  ")");
  if (!(val_fraction >= 0.0 && val_fraction <= 1.0))
    throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                "val_fraction must lie in [0, 1], got " + std::to_string(val_fraction));
  auto generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  const torch::Tensor order = torch::randperm(n, generator, torch::kLong);
  const int64_t base = n / num_sites, longer = n % num_sites;
  const int64_t begin = site_index * base + std::min<int64_t>(site_index, longer);
  const int64_t size = base + (site_index < longer ? 1 : 0);
  // std::nearbyint rounds half to even, like Python's round().
  const auto n_train = static_cast<int64_t>(std::nearbyint(size * (1.0 - val_fraction)));
  const torch::Tensor shard = order.slice(0, begin, begin + size);
  return {shard.slice(0, 0, n_train), shard.slice(0, n_train, size)};
}

}  // namespace flare::torch_sdk
