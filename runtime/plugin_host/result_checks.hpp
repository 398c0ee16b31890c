// What a plugin hands back is checked before the host uses it: every tensor
// (name, dtype, device, shape, size, data, finite values, and the layout of
// the model the host gave the plugin) and every JSON text. A failed check
// refuses the result through the PluginCall, naming the plugin, the call and
// what was wrong, so no caller sees a raw allocation, string or JSON error.
// Sizes are checked before anything is allocated or read.
#pragma once

#include <flare/plugin_abi.h>

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "plugin_host/plugin_call.hpp"

namespace flare::host {

// One tensor of a model as the host last handed it to a plugin.
struct TensorLayout {
  std::string name;
  DLDataType dtype{};
  std::vector<int64_t> shape;
};
using ModelLayout = std::vector<TensorLayout>;

ModelLayout layout_of(std::span<const flare_named_tensor> model);

enum class TensorRole {
  Model,  // a whole model: at least one tensor; matches `expected` when given
  Extra,  // aux tensors: may be none
};

// Dense CPU tensors with unique printable names, a dtype the host carries,
// a shape whose size fits this machine's memory, data where there are
// elements, finite floating-point values and, for a Model with `expected`,
// the same names, order, dtypes and shapes. `what` names them in messages
// ("the model", "aux"). Returns {tensors, count}.
std::span<const flare_named_tensor> checked_tensors(const PluginCall& call, const char* what,
                                                    const flare_named_tensor* tensors,
                                                    size_t count, TensorRole role,
                                                    const ModelLayout* expected = nullptr);

enum class JsonRole {
  // A JSON object of numbers, e.g. {"train_loss": 0.5}, null where not
  // measured; NULL or "" = none.
  Metrics,
  // The same, string labels allowed too, and "num_samples" a number >= 0 when
  // there; required.
  Evaluation,
  Object,      // any JSON object (free-form metadata); NULL or "" = none
};

// The text checked for its role; "" when it may be absent and is.
std::string_view checked_json(const PluginCall& call, const char* what, const char* text,
                              JsonRole role);

// A count the plugin reports (samples, steps): finite and not negative.
void check_count(const PluginCall& call, const char* what, double value);

}  // namespace flare::host
