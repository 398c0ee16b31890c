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
// Config: {"server_lr": 1.0 (> 0), "num_sites": N (>= 1)}.
// Takes whole updates (the host reads them from its spool). float32 and
// float64 tensors are averaged; integer ones (e.g. num_batches_tracked)
// take the value of the latest update.
#include <flare/plugin.hpp>

#include <algorithm>
#include <cstring>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "flat_math.hpp"

namespace {

using flare::Error;
namespace agg = flare::agg;

constexpr std::string_view kControlPrefix = "scaffold.c/";

bool is_float(DLDataType t, int bits) { return t.code == kDLFloat && t.bits == bits && t.lanes == 1; }
bool is_integer(DLDataType t) { return (t.code == kDLInt || t.code == kDLUInt) && t.lanes == 1; }
bool same_dtype(DLDataType a, DLDataType b) {
  return a.code == b.code && a.bits == b.bits && a.lanes == b.lanes;
}
const std::byte* data_of(const DLTensor& t) {
  return static_cast<const std::byte*>(t.data) + t.byte_offset;
}

// One tensor of the round: the global value it started from and the sum of
// the proposals.
struct Slot {
  std::string name;
  DLDataType dtype{};
  std::vector<int64_t> shape;
  size_t count = 0;
  bool control = false;  // a "scaffold.c/" tensor
  std::vector<std::byte> start;
  std::vector<std::byte> sum;  // the result once finalized

  bool averaged() const { return is_float(dtype, 32) || is_float(dtype, 64); }
};

// out = start + step * (sum * scale - start), element by element, in place over sum.
template <class T>
void step_towards_mean(Slot& slot, double scale, double step) {
  auto* sum = reinterpret_cast<T*>(slot.sum.data());
  const auto* start = reinterpret_cast<const T*>(slot.start.data());
  for (size_t i = 0; i < slot.count; ++i) {
    const double mean = static_cast<double>(sum[i]) * scale;
    sum[i] = static_cast<T>(start[i] + step * (mean - start[i]));
  }
}

class Scaffold final : public flare::Aggregator {
 public:
  static flare::ConfigSchema config_schema() {
    return flare::ConfigSchema().number("server_lr", {0, false}).integer("num_sites", 1);
  }

  Scaffold(const nlohmann::json& config, flare::Host host)
      : server_lr_(config.value("server_lr", 1.0)),
        num_sites_(config.value("num_sites", int64_t{0})),
        host_(host) {}

  void begin_round(int64_t round, std::span<const flare_named_tensor> model) override {
    started_ = false;
    const std::string where = "global model of round " + std::to_string(round);
    slots_.clear();
    index_.clear();
    size_t controls = 0;
    for (const flare_named_tensor& t : model) {
      if (!t.name) throw Error(FLARE_ERROR_INVALID_ARGUMENT, where + ": a tensor has no name");
      check_dense(where, t);
      Slot slot;
      slot.name = t.name;
      slot.dtype = t.tensor.dtype;
      slot.shape.assign(t.tensor.shape, t.tensor.shape + t.tensor.ndim);
      slot.count = static_cast<size_t>(flare::num_elements(t.tensor));
      slot.control = slot.name.starts_with(kControlPrefix);
      if (!slot.averaged() && (slot.control || !is_integer(slot.dtype)))
        throw Error(FLARE_ERROR_UNSUPPORTED,
                    where + ": tensor '" + slot.name + "' has dtype " +
                        flare::describe_dtype(slot.dtype) +
                        "; scaffold averages float32/float64 and copies integer tensors");
      const size_t bytes = slot.count * flare::element_bytes(slot.dtype);
      slot.start.assign(data_of(t.tensor), data_of(t.tensor) + bytes);
      slot.sum.assign(bytes, std::byte{0});
      controls += slot.control ? 1 : 0;
      if (!index_.emplace(slot.name, slots_.size()).second)
        throw Error(FLARE_ERROR_INVALID_ARGUMENT, where + ": tensor '" + slot.name + "' appears twice");
      slots_.push_back(std::move(slot));
    }
    if (controls == 0)
      throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                  where + " holds no \"scaffold.c/\" control variates: the trainer must run "
                          "SCAFFOLD too ([trainer.config] algorithm = \"scaffold\")");
    if (!control_.empty()) start_from_state(where);
    round_ = round;
    accepted_ = 0;
    started_ = true;
  }

  void accept(const flare_site_update& update) override {
    const std::string where = std::string("site '") + (update.site ? update.site : "?") + "'";
    if (!started_) throw Error(FLARE_ERROR_INVALID_ARGUMENT, where + ": update outside a round");
    if (update.round != round_)
      throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                  where + ": update is for round " + std::to_string(update.round) +
                      ", aggregating round " + std::to_string(round_));
    const std::vector<const DLTensor*> matched = match(where, update);
    // Folded only once all is checked: a refused update leaves no trace.
    for (size_t i = 0; i < slots_.size(); ++i) {
      Slot& slot = slots_[i];
      const std::byte* x = data_of(*matched[i]);
      if (!slot.averaged()) {
        std::memcpy(slot.sum.data(), x, slot.sum.size());
      } else if (is_float(slot.dtype, 32)) {
        auto* sum = reinterpret_cast<float*>(slot.sum.data());
        const auto* in = reinterpret_cast<const float*>(x);
        accepted_ == 0 ? agg::fold_first(sum, in, 1.0, slot.count) : agg::fold(sum, in, 1.0, slot.count);
      } else {
        auto* sum = reinterpret_cast<double*>(slot.sum.data());
        const auto* in = reinterpret_cast<const double*>(x);
        accepted_ == 0 ? agg::fold_first(sum, in, 1.0, slot.count) : agg::fold(sum, in, 1.0, slot.count);
      }
    }
    ++accepted_;
  }

  std::vector<flare_named_tensor> finalize() override {
    if (!started_ || accepted_ == 0)
      throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                  "round " + std::to_string(round_) + ": no update was accepted");
    started_ = false;  // the sums become the result
    if (num_sites_ > 0 && accepted_ > static_cast<size_t>(num_sites_))
      throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                  "round " + std::to_string(round_) + ": " + std::to_string(accepted_) +
                      " updates, more than num_sites = " + std::to_string(num_sites_));
    const auto sites = static_cast<double>(accepted_);
    const double participation = num_sites_ > 0 ? sites / static_cast<double>(num_sites_) : 1.0;
    std::vector<flare_named_tensor> out;
    control_.clear();
    for (Slot& slot : slots_) {
      const double step = slot.control ? participation : server_lr_;
      if (is_float(slot.dtype, 32)) step_towards_mean<float>(slot, 1.0 / sites, step);
      else if (is_float(slot.dtype, 64)) step_towards_mean<double>(slot, 1.0 / sites, step);
      if (slot.control) control_.push_back(slot_copy(slot));
      out.push_back(flare::tensor_view(slot.name.c_str(), slot.sum.data(), slot.dtype,
                                       slot.shape.data(), static_cast<int32_t>(slot.shape.size())));
    }
    ++rounds_;
    host_.metric("scaffold_participation", participation, round_);
    return out;
  }

  // c and the rounds it has stepped.
  flare::AggregatorState state() override {
    flare::AggregatorState s;
    for (Slot& c : control_)
      s.tensors.push_back(flare::tensor_view(c.name.c_str(), c.sum.data(), c.dtype, c.shape.data(),
                                             static_cast<int32_t>(c.shape.size())));
    s.meta = {{"rounds", rounds_}};
    return s;
  }

  void set_state(std::span<const flare_named_tensor> tensors, const nlohmann::json& meta) override {
    std::vector<Slot> control;
    for (const flare_named_tensor& t : tensors) {
      const std::string name = t.name ? t.name : "";
      check_dense("state", t);
      if (!name.starts_with(kControlPrefix) ||
          !(is_float(t.tensor.dtype, 32) || is_float(t.tensor.dtype, 64)))
        throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                    "state: tensor '" + name + "' is not a float \"scaffold.c/\" control variate");
      Slot c;
      c.name = name;
      c.dtype = t.tensor.dtype;
      c.shape.assign(t.tensor.shape, t.tensor.shape + t.tensor.ndim);
      c.count = static_cast<size_t>(flare::num_elements(t.tensor));
      c.control = true;
      c.sum.assign(data_of(t.tensor), data_of(t.tensor) + flare::num_bytes(t.tensor));
      control.push_back(std::move(c));
    }
    control_ = std::move(control);
    rounds_ = meta.value("rounds", int64_t{0});
  }

 private:
  static void check_dense(const std::string& where, const flare_named_tensor& t) {
    const std::string name = t.name ? t.name : "";
    if (t.tensor.device.device_type != kDLCPU || !flare::is_row_major(t.tensor) ||
        t.tensor.ndim < 0 || (t.tensor.ndim > 0 && !t.tensor.shape) ||
        (!t.tensor.data && flare::num_elements(t.tensor) > 0))
      throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                  where + ": tensor '" + name + "' is not a dense CPU tensor with data");
  }

  static Slot slot_copy(const Slot& slot) {
    Slot c;
    c.name = slot.name;
    c.dtype = slot.dtype;
    c.shape = slot.shape;
    c.count = slot.count;
    c.control = true;
    c.sum = slot.sum;
    return c;
  }

  // The round steps c from the c it holds: each of the model's control
  // variates must be one of them, the same dtype and shape.
  void start_from_state(const std::string& where) {
    const auto in_model = std::count_if(slots_.begin(), slots_.end(), [](const Slot& s) { return s.control; });
    if (static_cast<size_t>(in_model) != control_.size())
      throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                  where + " holds " + std::to_string(in_model) + " control variates, the aggregator's state " +
                      std::to_string(control_.size()));
    for (const Slot& c : control_) {
      const auto at = index_.find(c.name);
      if (at == index_.end() || !slots_[at->second].control)
        throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                    where + ": the aggregator's control variate '" + c.name + "' is not in it");
      Slot& slot = slots_[at->second];
      if (!same_dtype(slot.dtype, c.dtype) || slot.shape != c.shape)
        throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                    where + ": tensor '" + c.name + "' is " + flare::describe_dtype(slot.dtype) +
                        " " + flare::describe_shape(slot.shape) + ", the aggregator's c is " +
                        flare::describe_dtype(c.dtype) + " " + flare::describe_shape(c.shape));
      slot.start = c.sum;
    }
  }

  // The update's tensor for each slot, checked: every one once, of the
  // global model's dtype and shape, finite.
  std::vector<const DLTensor*> match(const std::string& where, const flare_site_update& update) const {
    if (update.num_weights != slots_.size() || (update.num_weights > 0 && !update.weights))
      throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                  where + ": sent " + std::to_string(update.num_weights) +
                      " tensors, the global model has " + std::to_string(slots_.size()));
    std::vector<const DLTensor*> matched(slots_.size(), nullptr);
    for (size_t k = 0; k < update.num_weights; ++k) {
      const flare_named_tensor& t = update.weights[k];
      const std::string name = t.name ? t.name : "";
      const auto at = index_.find(name);
      if (at == index_.end() || matched[at->second])
        throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                    where + ": tensor '" + name + "' is not in the global model or appears twice");
      const Slot& slot = slots_[at->second];
      check_dense(where, t);
      if (!same_dtype(t.tensor.dtype, slot.dtype) ||
          !std::equal(slot.shape.begin(), slot.shape.end(), t.tensor.shape, t.tensor.shape + t.tensor.ndim))
        throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                    where + ": tensor '" + name + "' is not " + flare::describe_dtype(slot.dtype) +
                        " " + flare::describe_shape(slot.shape) + " as in the global model");
      const void* x = data_of(t.tensor);
      const bool finite = is_float(slot.dtype, 32)   ? agg::all_finite(static_cast<const float*>(x), slot.count)
                          : is_float(slot.dtype, 64) ? agg::all_finite(static_cast<const double*>(x), slot.count)
                                                     : true;
      if (!finite)
        throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                    where + ": tensor '" + name + "' holds NaN or infinite values");
      matched[at->second] = &t.tensor;
    }
    return matched;
  }

  double server_lr_;
  int64_t num_sites_;  // 0: every site takes part in every round
  flare::Host host_;
  std::vector<Slot> slots_;
  std::unordered_map<std::string, size_t> index_;
  std::vector<Slot> control_;  // c after the last finalize (or as set_state gave it)
  int64_t round_ = 0;
  int64_t rounds_ = 0;
  size_t accepted_ = 0;
  bool started_ = false;
};

}  // namespace

FLARE_AGGREGATOR_PLUGIN(Scaffold, "scaffold", "1.0.0",
                        "SCAFFOLD's server step: weights and control variates from the sites' proposals")
