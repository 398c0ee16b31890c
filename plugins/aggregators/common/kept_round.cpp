#include "kept_round.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>

#include "flat_math.hpp"
#include "parallel_chunks.hpp"
#include "tensor_checks.hpp"

namespace flare::agg {
namespace {

using flare::describe_dtype;
using flare::describe_shape;
using flare::Error;

}  // namespace

void KeptRound::begin(int64_t round, std::span<const flare_named_tensor> model) {
  open_ = false;  // a begin that throws leaves no usable round
  tensors_.clear();
  index_.clear();
  updates_.clear();
  aggregated_sizes_.clear();
  const std::string where = "global model of round " + std::to_string(round);
  for (const auto& t : model) {
    check_tensor(where, t);
    const std::string name = t.name;
    const DLDataType dtype = t.tensor.dtype;
    const bool aggregated = is_float(dtype, 32) || is_float(dtype, 64);
    if (!aggregated && !is_integer(dtype))
      throw Error(FLARE_ERROR_UNSUPPORTED,
                  where + ": tensor '" + name + "' has dtype " + describe_dtype(dtype) + "; " +
                      aggregator_ + " aggregates float32/float64 and copies integer tensors");
    if (!index_.emplace(name, tensors_.size()).second)
      throw Error(FLARE_ERROR_INVALID_ARGUMENT, where + ": tensor '" + name + "' appears twice");
    TensorLayout layout;
    layout.name = name;
    layout.dtype = dtype;
    layout.shape.assign(t.tensor.shape, t.tensor.shape + t.tensor.ndim);
    layout.count = static_cast<size_t>(flare::num_elements(t.tensor));
    layout.element_bytes = flare::element_bytes(dtype);
    layout.aggregated = aggregated;
    aggregated_sizes_.push_back(aggregated ? layout.count : 0);
    tensors_.push_back(std::move(layout));
  }
  round_ = round;
  open_ = true;
}

void KeptRound::keep(const flare_site_update& update, const flare::Host& host) {
  if (!FLARE_HAS_FIELD(&update, flare_site_update, num_steps))
    throw Error(FLARE_ERROR_INVALID_ARGUMENT, "site update struct_size " +
                                                  std::to_string(update.struct_size) +
                                                  " is too small for ABI 1");
  const std::string where = site_of(update);
  if (!open_)
    throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                where + ": update outside a round (before begin_round or after finalize)");
  if (update.round != round_)
    throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                where + ": update is for round " + std::to_string(update.round) +
                    ", aggregating round " + std::to_string(round_));
  KeptUpdate kept{where, update.num_samples, update.num_steps, matched(where, update)};
  // A 1.4 host checked every value as the update streamed in (plugin_abi.h,
  // accept): a second pass over every update would halve the round's speed.
  if (!FLARE_HAS_FIELD(host.services(), flare_host_services, release_pages)) {
    check_all_finite(where, std::span<const TensorLayout>(tensors_),
                     std::span<const std::byte* const>(kept.data), aggregated_sizes_);
    // Read once for the check: its pages may leave memory until finalize.
    for (size_t i = 0; i < tensors_.size(); ++i)
      if (tensors_[i].count)
        host.release_pages(kept.data[i], tensors_[i].count * tensors_[i].element_bytes);
  }
  updates_.push_back(std::move(kept));
}

std::vector<const std::byte*> KeptRound::matched(const std::string& where,
                                                 const flare_site_update& update) const {
  std::vector<const flare_named_tensor*> tensors;
  match_update(where, update, std::span<const TensorLayout>(tensors_), index_, tensors);
  std::vector<const std::byte*> data(tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) data[i] = data_of(tensors[i]->tensor);
  return data;
}

void KeptRound::check_finalizable() const {
  if (!open_)
    throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                aggregator_ + ": finalize outside a round (before begin_round, or twice)");
  if (updates_.empty())
    throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                aggregator_ + ": round " + std::to_string(round_) +
                    ": no update was accepted, nothing to aggregate");
}

void KeptRound::close() {
  open_ = false;
  updates_.clear();
}

void ResultModel::resize(std::span<const TensorLayout> layout) {
  values_.resize(layout.size());
  for (size_t i = 0; i < layout.size(); ++i)
    values_[i].resize(layout[i].count * layout[i].element_bytes);
}

std::vector<flare_named_tensor> ResultModel::views(std::span<const TensorLayout> layout) {
  std::vector<flare_named_tensor> out;
  out.reserve(layout.size());
  for (size_t i = 0; i < layout.size(); ++i) {
    const TensorLayout& t = layout[i];
    out.push_back(flare::tensor_view(t.name.c_str(), values_[i].data(), t.dtype,
                                     const_cast<int64_t*>(t.shape.data()),
                                     static_cast<int32_t>(t.shape.size())));
  }
  return out;
}

void copy_integer_tensors(const KeptRound& round, const KeptUpdate& update, ResultModel& result,
                          const flare::Host& host) {
  const auto tensors = round.tensors();
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (tensors[i].aggregated || tensors[i].count == 0) continue;
    const size_t bytes = tensors[i].count * tensors[i].element_bytes;
    std::memcpy(result.data(i), update.data[i], bytes);
    host.release_pages(update.data[i], bytes);
  }
}

void copy_update(const KeptRound& round, const KeptUpdate& update, ResultModel& result,
                 const flare::Host& host) {
  const auto tensors = round.tensors();
  flare::agg::for_each_chunk_of(
      round.aggregated_sizes(),
      [&](size_t i, size_t a, size_t b) {
        const size_t bytes = tensors[i].element_bytes;
        std::memcpy(result.data(i) + a * bytes, update.data[i] + a * bytes, (b - a) * bytes);
        host.release_pages(update.data[i] + a * bytes, (b - a) * bytes);
      },
      flare::agg::max_threads());
  copy_integer_tensors(round, update, result, host);
}

std::string sites_of(const KeptRound& round, std::span<const size_t> which) {
  std::string out;
  for (size_t k : which) out += (out.empty() ? "" : ", ") + round.updates()[k].where;
  return out;
}

void release_elements(const KeptRound& round, size_t tensor, size_t a, size_t b,
                      const flare::Host& host, std::span<const size_t> which) {
  const TensorLayout& layout = round.tensors()[tensor];
  const auto updates = round.updates();
  auto release = [&](const KeptUpdate& u) {
    host.release_pages(u.data[tensor] + a * layout.element_bytes, (b - a) * layout.element_bytes);
  };
  if (which.empty())
    for (const KeptUpdate& u : updates) release(u);
  else
    for (size_t k : which) release(updates[k]);
}

}  // namespace flare::agg
