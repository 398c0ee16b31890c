// What the FedOpt and dp_fedavg tests share: a small model that owns its
// memory and an owned copy of an aggregator's state (ABI 1.4's views live
// only until the next call), to restore into a fresh one.
#pragma once

#include "plugin_host/plugin_instances.hpp"

#include <flare/plugin.hpp>

#include <cstddef>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "fedavg_fixtures.hpp"

namespace flare::testing {

// A float32 [3] weight, a float64 [2] bias, an int64 scalar counter.
struct SmallModel {
  std::vector<float> w = {0, 0, 0};
  std::vector<double> b = {0, 0};
  int64_t count = 0;
  int64_t w_shape[1] = {3};
  int64_t b_shape[1] = {2};

  std::vector<flare_named_tensor> tensors() {
    return {view("w", w.data(), {kDLFloat, 32, 1}, w_shape, 1),
            view("b", b.data(), {kDLFloat, 64, 1}, b_shape, 1),
            view("count", &count, {kDLInt, 64, 1}, nullptr, 0)};
  }
  // The model a finalize returned (copied out of the plugin's views).
  static SmallModel from(std::span<const flare_named_tensor> result) {
    SmallModel m;
    std::memcpy(m.w.data(), find(result, "w").tensor.data, 3 * sizeof(float));
    std::memcpy(m.b.data(), find(result, "b").tensor.data, 2 * sizeof(double));
    m.count = *static_cast<const int64_t*>(find(result, "count").tensor.data);
    return m;
  }
  bool same_bits(const SmallModel& o) const {
    return std::memcmp(w.data(), o.w.data(), 3 * sizeof(float)) == 0 &&
           std::memcmp(b.data(), o.b.data(), 2 * sizeof(double)) == 0 && count == o.count;
  }
};

// An aggregator's state, copied out of its views.
struct OwnedState {
  std::vector<std::string> names;
  std::vector<std::vector<std::byte>> data;
  std::vector<std::vector<int64_t>> shapes;
  std::vector<DLDataType> dtypes;
  std::string meta;

  static OwnedState of(host::AggregatorInstance& agg) {
    const auto state = agg.get_state();
    OwnedState s;
    s.meta = std::string(state.meta_json);
    for (const auto& t : state.tensors) {
      s.names.emplace_back(t.name);
      const auto* bytes = static_cast<const std::byte*>(t.tensor.data);
      s.data.emplace_back(bytes, bytes + flare::num_bytes(t.tensor));
      s.shapes.emplace_back(t.tensor.shape, t.tensor.shape + t.tensor.ndim);
      s.dtypes.push_back(t.tensor.dtype);
    }
    return s;
  }
  // Views over this copy, valid while it lives unchanged.
  std::vector<flare_named_tensor> tensors() {
    std::vector<flare_named_tensor> out;
    for (size_t i = 0; i < names.size(); ++i)
      out.push_back(view(names[i].c_str(), data[i].data(), dtypes[i], shapes[i].data(),
                         static_cast<int32_t>(shapes[i].size())));
    return out;
  }
  void restore_into(host::AggregatorInstance& agg) { agg.set_state(tensors(), meta); }
};

}  // namespace flare::testing
