// What the aggregator tests share: the shipped fedavg plugin, loaded from its
// .so, site updates over tensors the caller owns, and ways to read results
// and errors.
#pragma once

#include "plugin_host/plugin_instances.hpp"

#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include <doctest/doctest.h>

namespace flare::testing {

inline host::LoadedPlugin fedavg_plugin() {
  return host::load_plugin({"fedavg", FLARE_FEDAVG_PLUGIN, {}}, FLARE_PLUGIN_AGGREGATOR);
}

// A CPU tensor over memory the caller owns; `shape` must outlive it (NULL
// with ndim 0: a scalar).
inline flare_named_tensor view(const char* name, void* data, DLDataType dtype, int64_t* shape,
                               int32_t ndim) {
  flare_named_tensor t{};
  t.struct_size = sizeof(t);
  t.name = name;
  t.tensor = {data, {kDLCPU, 0}, ndim, dtype, shape, nullptr, 0};
  return t;
}

// A whole site update over `tensors` (which must outlive it).
inline flare_site_update update_of(const char* site, int64_t round,
                                   const std::vector<flare_named_tensor>& tensors, double samples,
                                   int64_t steps = 1) {
  flare_site_update u{};
  u.struct_size = sizeof(u);
  u.site = site;
  u.round = round;
  u.weights = tensors.data();
  u.num_weights = tensors.size();
  u.num_samples = samples;
  u.num_steps = steps;
  return u;
}

inline const flare_named_tensor& find(std::span<const flare_named_tensor> model,
                                      const std::string& name) {
  for (const auto& t : model)
    if (name == t.name) return t;
  FAIL("no tensor '" << name << "' in the result");
  throw std::logic_error("unreachable");
}

// Runs `call` expecting a PluginCallError and returns it.
template <class F>
host::PluginCallError call_error(F&& call) {
  try {
    call();
  } catch (const host::PluginCallError& e) {
    return e;
  }
  FAIL("expected a PluginCallError");
  throw std::logic_error("unreachable");
}

inline bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace flare::testing
