// FedAvg: the next global model is the average of the sites' models, weighted
// by each site's amount of local work. Updates are folded into a running
// weighted sum as they arrive, so memory does not grow with the number of sites.
//
// Config: {"weight": "num_samples" (default) | "num_steps" | "uniform"}.
// Every update must carry exactly the global model's tensors (any order) with
// the same dtypes and shapes, finite values and a finite weight > 0. float32
// tensors are averaged in a compensated float32 pair and float64 ones in double
// (flat_math.hpp: the result does not depend on the arrival order beyond float
// rounding); integer tensors (e.g. BatchNorm's num_batches_tracked) take
// the value of the latest accepted update.
#include <flare/plugin.hpp>

#include <atomic>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "flat_math.hpp"
#include "parallel_chunks.hpp"

namespace {

using flare::describe_dtype;
using flare::describe_shape;
using flare::Error;
namespace one_thread = flare::agg::one_thread;

enum class Weighting { NumSamples, NumSteps, Uniform };

// `config` has passed FedAvg::config_schema().
Weighting parse_weighting(const nlohmann::json& config) {
  const std::string mode = config.value("weight", "num_samples");
  if (mode == "num_steps") return Weighting::NumSteps;
  if (mode == "uniform") return Weighting::Uniform;
  return Weighting::NumSamples;
}

const char* weighting_name(Weighting w) {
  switch (w) {
    case Weighting::NumSamples: return "num_samples";
    case Weighting::NumSteps: return "num_steps";
    case Weighting::Uniform: return "uniform";
  }
  return "?";
}

bool same_dtype(DLDataType a, DLDataType b) {
  return a.code == b.code && a.bits == b.bits && a.lanes == b.lanes;
}

bool is_float(DLDataType t, int bits) { return t.code == kDLFloat && t.bits == bits && t.lanes == 1; }
bool is_averaged(DLDataType t) { return is_float(t, 32) || is_float(t, 64); }
bool is_integer(DLDataType t) { return (t.code == kDLInt || t.code == kDLUInt) && t.lanes == 1; }

const std::byte* data_of(const DLTensor& t) {
  return static_cast<const std::byte*>(t.data) + t.byte_offset;
}

// One tensor of the round's global model and its running sum.
struct Slot {
  std::string name;
  DLDataType dtype{};
  std::vector<int64_t> shape;
  size_t count = 0;
  bool averaged = false;
  // float32: `value` holds the running sum and `carry` its compensation; the
  // result is finished in place. float64: `value` holds the sum. Integer
  // tensors: `value` is the latest update's. So the round holds at most 2x
  // the model, for any number of sites.
  std::vector<std::byte> value;
  std::vector<float> carry;
};

class FedAvg final : public flare::Aggregator {
 public:
  static flare::ConfigSchema config_schema() {
    return flare::ConfigSchema().choice("weight", {"num_samples", "num_steps", "uniform"});
  }

  FedAvg(const nlohmann::json& config, flare::Host host)
      : weighting_(parse_weighting(config)), host_(host) {
    host_.debug(std::string("fedavg: weighting updates by ") + weighting_name(weighting_));
  }

  void begin_round(int64_t round, std::span<const flare_named_tensor> model) override {
    started_ = false;  // a begin_round that throws leaves no usable round
    finished_ = false;
    // Last round's buffers are reused for tensors of the same name: a big
    // model's every round then starts without allocating or faulting in pages.
    std::unordered_map<std::string, Slot> reusable;
    for (Slot& old : slots_) reusable.emplace(old.name, std::move(old));
    slots_.clear();
    index_.clear();
    slots_.reserve(model.size());
    for (const auto& t : model) {
      const std::string where = "global model of round " + std::to_string(round);
      check_tensor(where, t);
      const std::string name = t.name;
      if (!is_averaged(t.tensor.dtype) && !is_integer(t.tensor.dtype))
        throw Error(FLARE_ERROR_UNSUPPORTED,
                    where + ": tensor '" + name + "' has dtype " + describe_dtype(t.tensor.dtype) +
                        "; fedavg averages float32/float64 and copies integer tensors");
      if (!index_.emplace(name, slots_.size()).second)
        throw Error(FLARE_ERROR_INVALID_ARGUMENT, where + ": tensor '" + name + "' appears twice");
      Slot slot;
      if (const auto old = reusable.find(name); old != reusable.end()) {
        slot.value = std::move(old->second.value);
        slot.carry = std::move(old->second.carry);
      }
      slot.name = name;
      slot.dtype = t.tensor.dtype;
      slot.shape.assign(t.tensor.shape, t.tensor.shape + t.tensor.ndim);
      slot.count = static_cast<size_t>(flare::num_elements(t.tensor));
      slot.averaged = is_averaged(slot.dtype);
      slot.value.resize(flare::num_bytes(t.tensor));
      if (is_float(slot.dtype, 32)) slot.carry.resize(slot.count);
      else slot.carry = {};
      slots_.push_back(std::move(slot));
    }
    matched_.assign(slots_.size(), nullptr);
    averaged_sizes_.clear();
    for (const Slot& slot : slots_) averaged_sizes_.push_back(slot.averaged ? slot.count : 0);
    round_ = round;
    total_weight_ = 0;
    accepted_ = 0;
    started_ = true;
  }

  void accept(const flare_site_update& update) override {
    if (!FLARE_HAS_FIELD(&update, flare_site_update, num_steps))
      throw Error(FLARE_ERROR_INVALID_ARGUMENT, "site update struct_size " +
                                                    std::to_string(update.struct_size) +
                                                    " is too small for ABI 1");
    const std::string site = update.site ? update.site : "<unnamed>";
    const std::string where = "site '" + site + "'";
    if (finished_)
      throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                  where + ": update after round " + std::to_string(round_) + " was finalized");
    if (!started_)
      throw Error(FLARE_ERROR_INVALID_ARGUMENT, where + ": update before begin_round");
    if (update.round != round_)
      throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                  where + ": update is for round " + std::to_string(update.round) +
                      ", aggregating round " + std::to_string(round_));
    const double weight = weight_of(update);
    if (!std::isfinite(weight) || weight <= 0)
      throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                  where + ": weight " + weighting_name(weighting_) + " = " +
                      std::to_string(weight) + " must be finite and > 0");
    match(where, update);

    // Everything checked: only now fold it in, so a rejected update leaves no trace.
    // One parallel pass over every tensor; the first update writes the sums
    // (no zeroed buffers to read back).
    const bool first = accepted_ == 0;
    for (size_t i = 0; i < slots_.size(); ++i)
      if (!slots_[i].averaged)
        std::memcpy(slots_[i].value.data(), data_of(matched_[i]->tensor), slots_[i].value.size());
    flare::agg::for_each_chunk_of(
        averaged_sizes_,
        [&](size_t i, size_t a, size_t b) {
          Slot& slot = slots_[i];
          const void* x = data_of(matched_[i]->tensor);
          if (is_float(slot.dtype, 32)) {
            float* sum = reinterpret_cast<float*>(slot.value.data()) + a;
            const float* in = static_cast<const float*>(x) + a;
            if (first) one_thread::fold_first(sum, slot.carry.data() + a, in, weight, b - a);
            else one_thread::fold(sum, slot.carry.data() + a, in, weight, b - a);
          } else {
            double* sum = reinterpret_cast<double*>(slot.value.data()) + a;
            const double* in = static_cast<const double*>(x) + a;
            if (first) one_thread::fold_first(sum, in, weight, b - a);
            else one_thread::fold(sum, in, weight, b - a);
          }
        },
        flare::agg::max_threads());
    total_weight_ += weight;
    ++accepted_;
    host_.debug("fedavg: round " + std::to_string(round_) + ": folded in " + where +
                " with weight " + std::to_string(weight));
  }

  std::vector<flare_named_tensor> finalize() override {
    if (finished_)
      throw Error(FLARE_ERROR_INVALID_ARGUMENT, "round " + std::to_string(round_) +
                                                    " was already finalized (its sums are its result)");
    if (!started_ || accepted_ == 0)
      throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                  "round " + std::to_string(round_) + ": no update was accepted, nothing to average");
    const double scale = 1.0 / total_weight_;
    std::vector<flare_named_tensor> out;
    out.reserve(slots_.size());
    // Finished in place: the round is over, the sums become the result.
    started_ = false;
    finished_ = true;
    flare::agg::for_each_chunk_of(
        averaged_sizes_,
        [&](size_t i, size_t a, size_t b) {
          Slot& slot = slots_[i];
          if (is_float(slot.dtype, 32)) {
            one_thread::finish(reinterpret_cast<float*>(slot.value.data()) + a,
                               slot.carry.data() + a, scale, b - a);
          } else {
            double* sum = reinterpret_cast<double*>(slot.value.data()) + a;
            one_thread::finish(sum, sum, scale, b - a);
          }
        },
        flare::agg::max_threads());
    for (Slot& slot : slots_) {
      out.push_back(flare::tensor_view(slot.name.c_str(), slot.value.data(), slot.dtype,
                                       slot.shape.data(), static_cast<int32_t>(slot.shape.size())));
    }
    return out;
  }

 private:
  double weight_of(const flare_site_update& u) const {
    switch (weighting_) {
      case Weighting::NumSamples: return u.num_samples;
      case Weighting::NumSteps: return static_cast<double>(u.num_steps);
      case Weighting::Uniform: return 1.0;
    }
    return 0;
  }

  static void check_tensor(const std::string& where, const flare_named_tensor& t) {
    if (!t.name) throw Error(FLARE_ERROR_INVALID_ARGUMENT, where + ": a tensor has no name");
    const std::string name = t.name;
    if (t.tensor.device.device_type != kDLCPU)
      throw Error(FLARE_ERROR_UNSUPPORTED,
                  where + ": tensor '" + name + "' is not in CPU memory");
    if (t.tensor.ndim < 0 || (t.tensor.ndim > 0 && !t.tensor.shape))
      throw Error(FLARE_ERROR_INVALID_ARGUMENT, where + ": tensor '" + name + "' has no shape");
    if (!flare::is_row_major(t.tensor))
      throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                  where + ": tensor '" + name + "' is not dense row-major");
    if (!t.tensor.data && flare::num_elements(t.tensor) > 0)
      throw Error(FLARE_ERROR_INVALID_ARGUMENT, where + ": tensor '" + name + "' has no data");
  }

  // Pairs each global tensor with the update's tensor of the same name and
  // checks dtype, shape and finiteness; throws naming the site and tensor.
  void match(const std::string& where, const flare_site_update& update) {
    if (update.num_weights != slots_.size())
      throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                  where + ": sent " + std::to_string(update.num_weights) +
                      " tensors, the global model has " + std::to_string(slots_.size()));
    if (update.num_weights > 0 && !update.weights)
      throw Error(FLARE_ERROR_INVALID_ARGUMENT, where + ": weights are NULL");
    std::fill(matched_.begin(), matched_.end(), nullptr);
    for (size_t k = 0; k < update.num_weights; ++k) {
      const flare_named_tensor& t = update.weights[k];
      check_tensor(where, t);
      const auto found = index_.find(t.name);
      if (found == index_.end())
        throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                    where + ": tensor '" + t.name + "' is not in the global model");
      const Slot& slot = slots_[found->second];
      if (matched_[found->second])
        throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                    where + ": tensor '" + slot.name + "' appears twice");
      if (!same_dtype(t.tensor.dtype, slot.dtype))
        throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                    where + ": tensor '" + slot.name + "' has dtype " +
                        describe_dtype(t.tensor.dtype) + ", the global model's is " +
                        describe_dtype(slot.dtype));
      if (t.tensor.ndim != static_cast<int32_t>(slot.shape.size()) ||
          !std::equal(slot.shape.begin(), slot.shape.end(), t.tensor.shape))
        throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                    where + ": tensor '" + slot.name + "' has shape " +
                        describe_shape({t.tensor.shape, static_cast<size_t>(t.tensor.ndim)}) +
                        ", the global model's is " + describe_shape(slot.shape));
      matched_[found->second] = &t;
    }
    check_finite(where);
  }

  // One parallel pass over every averaged tensor of the update; names the
  // first (in the global model's order) holding NaN or infinity.
  void check_finite(const std::string& where) {
    auto bad = std::make_unique<std::atomic<bool>[]>(slots_.size());
    flare::agg::for_each_chunk_of(
        averaged_sizes_,
        [&](size_t i, size_t a, size_t b) {
          const void* x = data_of(matched_[i]->tensor);
          const bool ok = is_float(slots_[i].dtype, 32)
                              ? one_thread::all_finite(static_cast<const float*>(x) + a, b - a)
                              : one_thread::all_finite(static_cast<const double*>(x) + a, b - a);
          if (!ok) bad[i].store(true, std::memory_order_relaxed);
        },
        flare::agg::max_threads());
    for (size_t i = 0; i < slots_.size(); ++i)
      if (bad[i].load())
        throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                    where + ": tensor '" + slots_[i].name + "' holds NaN or infinite values");
  }

  Weighting weighting_;
  flare::Host host_;
  std::vector<Slot> slots_;
  std::unordered_map<std::string, size_t> index_;
  std::vector<const flare_named_tensor*> matched_;  // slot index -> update tensor
  std::vector<size_t> averaged_sizes_;  // slot index -> elements to average (0: copied)
  int64_t round_ = 0;
  double total_weight_ = 0;
  size_t accepted_ = 0;
  bool started_ = false;
  bool finished_ = false;  // finalize turned the sums into the result
};

}  // namespace

FLARE_AGGREGATOR_PLUGIN(FedAvg, "fedavg", "1.0.0",
                        "FedAvg weighted by local work, folded in as updates arrive")
