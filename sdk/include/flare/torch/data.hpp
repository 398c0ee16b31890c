// In-memory datasets and the federated split of a sample pool into sites.
// Header-only; part of the C++ SDK.
#pragma once

#include <flare/data_split.hpp>
#include <flare/plugin.hpp>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

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

// The first round((1 - val_fraction) * size) samples of `shard` for training,
// the rest for validation. std::nearbyint rounds half to even, like Python's
// round().
inline SiteSplit cut_train_validation(const torch::Tensor& shard, double val_fraction) {
  if (!(val_fraction >= 0.0 && val_fraction <= 1.0))
    throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                "val_fraction must lie in [0, 1], got " + std::to_string(val_fraction));
  const int64_t size = shard.size(0);
  const auto n_train = static_cast<int64_t>(std::nearbyint(size * (1.0 - val_fraction)));
  return {shard.slice(0, 0, n_train), shard.slice(0, n_train, size)};
}

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
  auto generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  const torch::Tensor order = torch::randperm(n, generator, torch::kLong);
  const int64_t base = n / num_sites, longer = n % num_sites;
  const int64_t begin = site_index * base + std::min<int64_t>(site_index, longer);
  const int64_t size = base + (site_index < longer ? 1 : 0);
  return cut_train_validation(order.slice(0, begin, begin + size), val_fraction);
}

// The site's share of a pool of samples labelled `labels` (int64, one per
// sample, classes from 0) by the job's [data] split (worker.data): "iid" is
// site_split above; "dirichlet" is this site's part of dirichlet_split (seeded
// with `seed`, the same on every site and rank), cut into training and
// validation samples the same way.
inline SiteSplit site_split(const torch::Tensor& labels, const WorkerInfo& worker, uint64_t seed,
                            double val_fraction) {
  const DataSplitSpec spec = DataSplitSpec::from_json(worker.data);
  if (spec.kind == DataSplitSpec::Kind::Iid)
    return site_split(labels.size(0), worker.site_index, worker.num_sites, seed, val_fraction);
  const torch::Tensor contiguous = labels.to(torch::kLong).contiguous();
  const std::span<const int64_t> all(contiguous.data_ptr<int64_t>(),
                                     static_cast<size_t>(contiguous.numel()));
  std::vector<std::vector<int64_t>> sites = dirichlet_split(all, worker.num_sites, spec.alpha, seed);
  std::vector<int64_t>& mine = sites.at(static_cast<size_t>(worker.site_index));
  const torch::Tensor shard =
      torch::from_blob(mine.data(), {static_cast<int64_t>(mine.size())}, torch::kLong).clone();
  return cut_train_validation(shard, val_fraction);
}

// Rank 0 of a site logs how many samples of each class its split holds and
// writes it to <work_dir>/label_histogram.json: {"site", "split", "alpha",
// "train": [n per class], "validation": [...]}. Other ranks do nothing.
inline void report_label_histogram(const Host& host, const WorkerInfo& worker,
                                   const torch::Tensor& labels, const SiteSplit& split,
                                   int64_t num_classes) {
  if (worker.rank != 0) return;
  const torch::Tensor all = labels.to(torch::kLong).contiguous();
  const std::span<const int64_t> y(all.data_ptr<int64_t>(), static_cast<size_t>(all.numel()));
  const auto counts = [&](const torch::Tensor& indices) {
    const torch::Tensor i = indices.contiguous();
    return label_histogram(y, {i.data_ptr<int64_t>(), static_cast<size_t>(i.numel())}, num_classes);
  };
  const DataSplitSpec spec = DataSplitSpec::from_json(worker.data);
  nlohmann::json report = {{"site", worker.site_name},
                           {"split", spec.kind == DataSplitSpec::Kind::Iid ? "iid" : "dirichlet"},
                           {"train", counts(split.train)},
                           {"validation", counts(split.validation)}};
  if (spec.kind == DataSplitSpec::Kind::Dirichlet) report["alpha"] = spec.alpha;
  host.info("labels per class of this site's training split: " + report["train"].dump());
  if (worker.work_dir.empty()) return;
  const std::filesystem::path file = std::filesystem::path(worker.work_dir) / "label_histogram.json";
  std::ofstream out(file);
  out << report.dump(2) << "\n";
  if (!out) host.warn("could not write " + file.string());
}

}  // namespace flare::torch_sdk
