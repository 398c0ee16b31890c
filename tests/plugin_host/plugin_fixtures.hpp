// What several plugin-host tests (and crash_in_plugin) do with the fixture
// plugins: describe a one-rank worker, run an aggregator's round.
#pragma once

#include <flare/plugin.hpp>

#include "plugin_host/plugin_instances.hpp"

namespace flare::testing {

// Rank 0 of a one-rank group of site-1, the only site, on the CPU.
inline flare_worker_info site_one() {
  flare_worker_info w{};
  w.site_name = "site-1";
  w.num_sites = 1;
  w.world_size = 1;
  w.local_world_size = 1;
  w.device = {kDLCPU, 0};
  w.num_threads = 1;
  return w;
}

// begin_round over the model w = [1, 2, 3, 4] and site-1's update of the
// same: what finalize needs to have something to hand back.
inline void run_round(host::AggregatorInstance& aggregator) {
  float w[4] = {1, 2, 3, 4};
  int64_t shape[1] = {4};
  const flare_named_tensor model = tensor_view("w", w, {kDLFloat, 32, 1}, shape, 1);
  aggregator.begin_round(0, {&model, 1});
  flare_site_update update{};
  update.site = "site-1";
  update.weights = &model;
  update.num_weights = 1;
  update.num_samples = 10;
  aggregator.accept(update);
}

}  // namespace flare::testing
