// What the robust aggregator tests share: the shipped plugins loaded from
// their .so files, a small model of three dtypes, and updates over it.
#pragma once

#include "plugin_host/plugin_instances.hpp"

#include "fedavg_fixtures.hpp"

#include <string>
#include <vector>

namespace flare::testing {

inline host::LoadedPlugin robust_plugin(const std::string& name) {
  return host::load_plugin(
      {name, std::string(FLARE_ROBUST_PLUGIN_DIR) + "/libflare_" + name + ".so", {}},
      FLARE_PLUGIN_AGGREGATOR);
}

// A float32 [2] weight, a float64 [1] bias and an int64 counter (like
// BatchNorm's num_batches_tracked), owning their memory.
struct SmallModel {
  std::vector<float> weight = {0, 0};
  std::vector<double> bias = {0};
  int64_t batches = 0;
  int64_t weight_shape[1] = {2};
  int64_t bias_shape[1] = {1};

  SmallModel() = default;
  SmallModel(float w0, float w1, double b, int64_t count)
      : weight{w0, w1}, bias{b}, batches(count) {}
  SmallModel(const SmallModel&) = delete;  // views point into it

  std::vector<flare_named_tensor> tensors() {
    return {view("w", weight.data(), {kDLFloat, 32, 1}, weight_shape, 1),
            view("b", bias.data(), {kDLFloat, 64, 1}, bias_shape, 1),
            view("count", &batches, {kDLInt, 64, 1}, nullptr, 0)};
  }
};

struct SmallResult {
  float w0, w1;
  double b;
  int64_t count;
};

inline SmallResult read_small(std::span<const flare_named_tensor> model) {
  const auto* w = static_cast<const float*>(find(model, "w").tensor.data);
  return {w[0], w[1], *static_cast<const double*>(find(model, "b").tensor.data),
          *static_cast<const int64_t*>(find(model, "count").tensor.data)};
}

// Sites sending SmallModels; their tensors stay alive (and at the same
// address) as long as this does, as a keeps-updates aggregator needs.
class Sites {
 public:
  SmallModel& add(std::string name, float w0, float w1, double b, int64_t count,
                  double samples = 1, int64_t steps = 1) {
    auto& site = sites_.emplace_back(std::make_unique<Site>());
    site->name = std::move(name);
    site->model = std::make_unique<SmallModel>(w0, w1, b, count);
    site->tensors = site->model->tensors();
    site->samples = samples;
    site->steps = steps;
    return *site->model;
  }
  void send_all(host::AggregatorInstance& agg, int64_t round = 0) {
    for (const auto& site : sites_) send(agg, *site, round);
  }
  void send(host::AggregatorInstance& agg, size_t k, int64_t round = 0) {
    send(agg, *sites_[k], round);
  }

 private:
  struct Site {
    std::string name;
    std::unique_ptr<SmallModel> model;
    std::vector<flare_named_tensor> tensors;
    double samples;
    int64_t steps;
  };
  static void send(host::AggregatorInstance& agg, const Site& site, int64_t round) {
    flare_site_update u{};
    u.struct_size = sizeof(u);
    u.site = site.name.c_str();
    u.round = round;
    u.weights = site.tensors.data();
    u.num_weights = site.tensors.size();
    u.num_samples = site.samples;
    u.num_steps = site.steps;
    agg.accept(u);
  }
  std::vector<std::unique_ptr<Site>> sites_;
};

inline SmallResult run_small(const std::string& plugin, const std::string& config, Sites& sites) {
  const host::HostServices host;
  host::AggregatorInstance agg(robust_plugin(plugin), config, host);
  SmallModel global;
  agg.begin_round(0, global.tensors());
  sites.send_all(agg);
  return read_small(agg.finalize());
}

}  // namespace flare::testing
