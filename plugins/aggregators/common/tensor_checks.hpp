// The checks every aggregator of common/ makes of a tensor it is handed
// (WeightedMean's folds and KeptRound's kept updates), in one place so that
// their messages agree.
#pragma once

#include <flare/plugin.hpp>

#include <algorithm>
#include <atomic>
#include <memory>
#include <cstddef>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "flat_math.hpp"
#include "parallel_chunks.hpp"

namespace flare::agg {

inline bool is_float(DLDataType t, int bits) {
  return t.code == kDLFloat && t.bits == bits && t.lanes == 1;
}
inline bool is_integer(DLDataType t) {
  return (t.code == kDLInt || t.code == kDLUInt) && t.lanes == 1;
}
inline bool same_dtype(DLDataType a, DLDataType b) {
  return a.code == b.code && a.bits == b.bits && a.lanes == b.lanes;
}

inline const std::byte* data_of(const DLTensor& t) {
  return static_cast<const std::byte*>(t.data) + t.byte_offset;
}

// "site 'x'", for messages.
inline std::string site_of(const flare_site_update& update) {
  return std::string("site '") + (update.site ? update.site : "<unnamed>") + "'";
}

// Throws naming `where` and the tensor unless it is named, in CPU memory,
// dense row-major, with a shape and (unless empty) data.
inline void check_tensor(const std::string& where, const flare_named_tensor& t) {
  if (!t.name) throw Error(FLARE_ERROR_INVALID_ARGUMENT, where + ": a tensor has no name");
  const std::string name = t.name;
  if (t.tensor.device.device_type != kDLCPU)
    throw Error(FLARE_ERROR_UNSUPPORTED, where + ": tensor '" + name + "' is not in CPU memory");
  if (t.tensor.ndim < 0 || (t.tensor.ndim > 0 && !t.tensor.shape))
    throw Error(FLARE_ERROR_INVALID_ARGUMENT, where + ": tensor '" + name + "' has no shape");
  if (!flare::is_row_major(t.tensor))
    throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                where + ": tensor '" + name + "' is not dense row-major");
  if (!t.tensor.data && flare::num_elements(t.tensor) > 0)
    throw Error(FLARE_ERROR_INVALID_ARGUMENT, where + ": tensor '" + name + "' has no data");
}

// Pairs each tensor of `layout` (the global model's: anything with name,
// dtype and shape; `index` maps a name to its place) with the update's tensor
// of that name, into `matched` (sized as `layout`). Throws naming `where` and
// the tensor at fault: a count, name, dtype or shape that differs, a tensor
// sent twice.
template <class Layout>
void match_update(const std::string& where, const flare_site_update& update,
                  std::span<const Layout> layout,
                  const std::unordered_map<std::string, size_t>& index,
                  std::vector<const flare_named_tensor*>& matched) {
  if (update.num_weights != layout.size())
    throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                where + ": sent " + std::to_string(update.num_weights) +
                    " tensors, the global model has " + std::to_string(layout.size()));
  if (update.num_weights > 0 && !update.weights)
    throw Error(FLARE_ERROR_INVALID_ARGUMENT, where + ": weights are NULL");
  matched.assign(layout.size(), nullptr);
  for (size_t k = 0; k < update.num_weights; ++k) {
    const flare_named_tensor& t = update.weights[k];
    check_tensor(where, t);
    const auto found = index.find(t.name);
    if (found == index.end())
      throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                  where + ": tensor '" + t.name + "' is not in the global model");
    const Layout& want = layout[found->second];
    if (matched[found->second])
      throw Error(FLARE_ERROR_INVALID_ARGUMENT, where + ": tensor '" + want.name + "' appears twice");
    if (!same_dtype(t.tensor.dtype, want.dtype))
      throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                  where + ": tensor '" + want.name + "' has dtype " +
                      describe_dtype(t.tensor.dtype) + ", the global model's is " +
                      describe_dtype(want.dtype));
    if (t.tensor.ndim != static_cast<int32_t>(want.shape.size()) ||
        !std::equal(want.shape.begin(), want.shape.end(), t.tensor.shape))
      throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                  where + ": tensor '" + want.name + "' has shape " +
                      describe_shape({t.tensor.shape, static_cast<size_t>(t.tensor.ndim)}) +
                      ", the global model's is " + describe_shape(want.shape));
    matched[found->second] = &t;
  }
}

// Throws naming `where` and the first tensor of `layout` (anything with name
// and dtype; float32 or float64 where counted) that holds NaN or infinity:
// data[i] is tensor i's first element, counts[i] its elements to check (0:
// none, e.g. an integer tensor). One pass on all cores.
template <class Layout>
void check_all_finite(const std::string& where, std::span<const Layout> layout,
                      std::span<const std::byte* const> data, std::span<const size_t> counts) {
  auto bad = std::make_unique<std::atomic<bool>[]>(layout.size());
  for_each_chunk_of(
      counts,
      [&](size_t i, size_t a, size_t b) {
        const bool ok =
            is_float(layout[i].dtype, 32)
                ? one_thread::all_finite(reinterpret_cast<const float*>(data[i]) + a, b - a)
                : one_thread::all_finite(reinterpret_cast<const double*>(data[i]) + a, b - a);
        if (!ok) bad[i].store(true, std::memory_order_relaxed);
      },
      max_threads());
  for (size_t i = 0; i < layout.size(); ++i)
    if (bad[i].load())
      throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                  where + ": tensor '" + layout[i].name + "' holds NaN or infinite values");
}

}  // namespace flare::agg
