// SCAFFOLD's server step (Karimireddy et al. 2020). The global model holds the
// weights x and the control variates c, one "scaffold.c/<parameter>" tensor
// each (the SDK's LightningTrainer adds them with algorithm = "scaffold",
// sdk/include/flare/torch/local_algorithm.hpp). Each site's update holds, under
// the same names, its proposal for every tensor: y_i for x and c + dc_i for c.
// With the plain mean m of the round's |S| proposals:
//   x <- x + server_lr * (m - x)    (= x + eta_g * mean(y_i - x))
//   c <- c + |S| / N * (m - c)      (= c + |S|/N * mean(dc_i))
// N = num_sites, or |S| when absent (every site takes part each round).
// c is also its state across rounds (ABI 1.4), so a restarted server steps
// from the c it held, not from a c it was handed.
//
// The proposals are folded into common/'s WeightedMean (uniform weights) as
// they arrive, whole or streamed (ABI 1.3), exactly as fedavg folds them;
// finalize takes the step above in one pass on all cores. Integer tensors
// (e.g. num_batches_tracked) take the value of the latest update.
//
// Config: {"server_lr": 1.0 (> 0), "num_sites": N (>= 1)}.
#include <flare/plugin.hpp>

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "flat_math.hpp"
#include "mean_aggregator.hpp"
#include "parallel_chunks.hpp"

namespace {

using flare::Error;
namespace agg = flare::agg;

constexpr std::string_view kControlPrefix = "scaffold.c/";

bool same_dtype(DLDataType a, DLDataType b) {
  return a.code == b.code && a.bits == b.bits && a.lanes == b.lanes;
}
bool is_float(DLDataType t) {
  return t.code == kDLFloat && (t.bits == 32 || t.bits == 64) && t.lanes == 1;
}

// SCAFFOLD takes the plain mean of the proposals; x is stepped from the
// round's global model, kept by the mean.
agg::WeightedMean::Settings plain_mean() {
  agg::WeightedMean::Settings settings;
  settings.weighting = agg::Weighting::Uniform;
  settings.keep_global = true;
  return settings;
}

// out = start + step * (sum * scale - start), element by element, in place over sum.
template <class T>
void step_towards_mean(T* sum, const T* start, double scale, double step, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const double mean = static_cast<double>(sum[i]) * scale;
    sum[i] = static_cast<T>(start[i] + step * (mean - start[i]));
  }
}

// One control variate of the state: c after the last finalize (or as
// set_state gave it).
struct Control {
  std::string name;
  DLDataType dtype{};
  std::vector<int64_t> shape;
  std::vector<std::byte> value;
};

class Scaffold final : public agg::MeanAggregator {
 public:
  static flare::ConfigSchema config_schema() {
    return flare::ConfigSchema().number("server_lr", {0, false}).integer("num_sites", 1);
  }

  Scaffold(const nlohmann::json& config, flare::Host host)
      : MeanAggregator("scaffold", plain_mean(), host),
        server_lr_(config.value("server_lr", 1.0)),
        num_sites_(config.value("num_sites", int64_t{0})),
        host_(host) {}

  void begin_round(int64_t round, std::span<const flare_named_tensor> model) override {
    starts_.clear();
    MeanAggregator::begin_round(round, model);
    try {
      attach_starts("global model of round " + std::to_string(round));
    } catch (...) {
      starts_.clear();
      mean_.cancel_round();  // no update may be folded into a round it cannot step
      throw;
    }
  }

  std::vector<flare_named_tensor> finalize() override {
    const double scale = mean_.close_round();
    const size_t sites = mean_.accepted();
    if (num_sites_ > 0 && sites > static_cast<size_t>(num_sites_))
      throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                  "round " + std::to_string(mean_.round()) + ": " + std::to_string(sites) +
                      " updates, more than num_sites = " + std::to_string(num_sites_));
    const double participation =
        num_sites_ > 0 ? static_cast<double>(sites) / static_cast<double>(num_sites_) : 1.0;
    std::vector<agg::TensorSum>& slots = mean_.slots();
    agg::for_each_chunk_of(
        mean_.averaged_sizes(),
        [&](size_t i, size_t a, size_t b) {
          const double step = is_control(slots[i]) ? participation : server_lr_;
          if (slots[i].is_float32())
            step_towards_mean(reinterpret_cast<float*>(slots[i].value.data()) + a,
                              reinterpret_cast<const float*>(starts_[i]) + a, scale, step, b - a);
          else
            step_towards_mean(reinterpret_cast<double*>(slots[i].value.data()) + a,
                              reinterpret_cast<const double*>(starts_[i]) + a, scale, step, b - a);
        },
        agg::max_threads());
    keep_control(slots);
    ++rounds_;
    host_.metric("scaffold_participation", participation, mean_.round());
    return mean_.result_views();
  }

  // c and the rounds it has stepped.
  flare::AggregatorState state() override {
    flare::AggregatorState s;
    for (Control& c : control_)
      s.tensors.push_back(flare::tensor_view(c.name.c_str(), c.value.data(), c.dtype,
                                             c.shape.data(), static_cast<int32_t>(c.shape.size())));
    s.meta = {{"rounds", rounds_}};
    return s;
  }

  void set_state(std::span<const flare_named_tensor> tensors, const nlohmann::json& meta) override {
    std::vector<Control> control;
    for (const flare_named_tensor& t : tensors) {
      const std::string name = t.name ? t.name : "";
      const DLTensor& d = t.tensor;
      if (!name.starts_with(kControlPrefix) || !is_float(d.dtype) ||
          d.device.device_type != kDLCPU || !flare::is_row_major(d) || d.ndim < 0 ||
          (d.ndim > 0 && !d.shape) || (!d.data && flare::num_elements(d) > 0))
        throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                    "state: tensor '" + name +
                        "' is not a dense float CPU \"scaffold.c/\" control variate");
      const auto* data = static_cast<const std::byte*>(d.data) + d.byte_offset;
      control.push_back({name, d.dtype, std::vector<int64_t>(d.shape, d.shape + d.ndim),
                         std::vector<std::byte>(data, data + flare::num_bytes(d))});
    }
    control_ = std::move(control);
    rounds_ = meta.value("rounds", int64_t{0});
  }

 private:
  static bool is_control(const agg::TensorSum& slot) {
    return std::string_view(slot.name).starts_with(kControlPrefix);
  }

  // Where each float slot steps from: x from the round's global model, c from
  // the c the state holds (once it holds one), which must match the model's
  // control variates one for one, dtype and shape.
  void attach_starts(const std::string& where) {
    const std::vector<agg::TensorSum>& slots = mean_.slots();
    std::unordered_map<std::string_view, const Control*> held;
    for (const Control& c : control_) held.emplace(c.name, &c);
    starts_.assign(slots.size(), nullptr);
    size_t controls = 0;
    for (size_t i = 0; i < slots.size(); ++i) {
      const agg::TensorSum& slot = slots[i];
      starts_[i] = mean_.global(i);
      if (!is_control(slot)) continue;
      ++controls;
      if (!slot.averaged)
        throw Error(FLARE_ERROR_UNSUPPORTED,
                    where + ": control variate '" + slot.name + "' has dtype " +
                        flare::describe_dtype(slot.dtype) + "; scaffold steps float32/float64 ones");
      if (control_.empty()) continue;
      const auto found = held.find(slot.name);
      if (found == held.end())
        throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                    where + ": control variate '" + slot.name + "' is not in the aggregator's state");
      const Control& c = *found->second;
      if (!same_dtype(slot.dtype, c.dtype) || slot.shape != c.shape)
        throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                    where + ": tensor '" + c.name + "' is " + flare::describe_dtype(slot.dtype) +
                        " " + flare::describe_shape(slot.shape) + ", the aggregator's c is " +
                        flare::describe_dtype(c.dtype) + " " + flare::describe_shape(c.shape));
      starts_[i] = c.value.data();
    }
    if (controls == 0)
      throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                  where + " holds no \"scaffold.c/\" control variates: the trainer must run "
                          "SCAFFOLD too ([trainer.config] algorithm = \"scaffold\")");
    if (!control_.empty() && controls != control_.size())
      throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                  where + " holds " + std::to_string(controls) +
                      " control variates, the aggregator's state " + std::to_string(control_.size()));
  }

  // The stepped c becomes the state (the slots' memory is the next round's).
  void keep_control(const std::vector<agg::TensorSum>& slots) {
    std::vector<Control> control;
    for (const agg::TensorSum& slot : slots)
      if (is_control(slot)) control.push_back({slot.name, slot.dtype, slot.shape, slot.value});
    control_ = std::move(control);
    starts_.clear();
  }

  double server_lr_;
  int64_t num_sites_;  // 0: every site takes part in every round
  flare::Host host_;
  std::vector<const std::byte*> starts_;  // slot index -> the value it steps from
  std::vector<Control> control_;
  int64_t rounds_ = 0;
};

}  // namespace

FLARE_AGGREGATOR_PLUGIN(Scaffold, "scaffold", "1.0.0",
                        "SCAFFOLD's server step: weights and control variates from the sites' "
                        "proposals, folded in as they arrive")
