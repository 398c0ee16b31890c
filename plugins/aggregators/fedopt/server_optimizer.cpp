#include "server_optimizer.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <utility>

#include "flat_math.hpp"
#include "parallel_chunks.hpp"
#include "tensor_checks.hpp"

namespace flare::fedopt {

namespace {

bool same_dtype(DLDataType a, DLDataType b) {
  return a.code == b.code && a.bits == b.bits && a.lanes == b.lanes;
}

std::string describe(DLDataType dtype, std::span<const int64_t> shape) {
  return describe_dtype(dtype) + " " + describe_shape(shape);
}

agg::WeightedMean::Settings mean_settings(const nlohmann::json& config) {
  agg::WeightedMean::Settings settings = agg::WeightedMean::settings_from(config);
  settings.keep_global = true;  // the step starts from it
  return settings;
}

Step step_from(const nlohmann::json& config, const Step& defaults) {
  Step step = defaults;
  step.eta = config.value("eta", defaults.eta);
  step.beta1 = config.value(defaults.rule == Rule::Momentum ? "momentum" : "beta1", defaults.beta1);
  step.beta2 = config.value("beta2", defaults.beta2);
  step.tau = config.value("tau", defaults.tau);
  return step;
}

}  // namespace

ConfigSchema ServerOptimizer::schema_for(Rule rule) {
  ConfigSchema schema =
      agg::WeightedMean::add_options({}).choice("fold", {"as_arrived", "at_finalize"});
  const Bound positive{0, false}, zero{0}, below_one{1, false};
  schema.number("eta", positive).number(rule == Rule::Momentum ? "momentum" : "beta1", zero, below_one);
  if (rule == Rule::Adam || rule == Rule::Yogi) schema.number("beta2", zero, below_one);
  if (rule != Rule::Momentum) schema.number("tau", positive);
  if (rule == Rule::Adam) schema.boolean("bias_correction");
  return schema;
}

ServerOptimizer::ServerOptimizer(std::string name, const nlohmann::json& config,
                                 const Step& defaults, Host host)
    : MeanAggregator(name, mean_settings(config), host),
      name_(std::move(name)),
      step_(step_from(config, defaults)),
      bias_correction_(config.value("bias_correction", false)),
      host_(host) {
  if (config.value("fold", "as_arrived") == "at_finalize")
    kept_.emplace(name_, agg::WeightedMean::settings_from(config), host);
}

void ServerOptimizer::begin_round(int64_t round, std::span<const flare_named_tensor> model) {
  slot_moments_.clear();
  kept_globals_.clear();
  if (kept_) {
    kept_->begin_round(round, model);
    // A 1.4 host (KeptMean checked) keeps the model valid until finalize.
    for (const flare_named_tensor& t : model) kept_globals_.push_back(agg::data_of(t.tensor));
  } else {
    MeanAggregator::begin_round(round, model);
  }
  try {
    attach_moments();
  } catch (...) {
    slot_moments_.clear();
    // No update may be accepted into a round without moments.
    if (kept_) kept_->cancel_round();
    else mean_.cancel_round();
    throw;
  }
}

void ServerOptimizer::accept(const flare_site_update& update) {
  if (kept_) kept_->accept(update);
  else MeanAggregator::accept(update);
}

// The round's tensors, in the order finalize visits them.
std::vector<ServerOptimizer::Slot> ServerOptimizer::round_slots() {
  std::vector<Slot> slots;
  if (kept_) {
    for (const agg::TensorLayout& t : kept_->tensors())
      slots.push_back({&t.name, t.dtype, &t.shape, t.count * t.element_bytes, t.aggregated});
  } else {
    for (const agg::TensorSum& t : mean_.slots())
      slots.push_back({&t.name, t.dtype, &t.shape, t.count * t.element_bytes, t.averaged});
  }
  return slots;
}

// Pairs each float slot with its moments; every moment must find its slot.
void ServerOptimizer::attach_moments() {
  const std::vector<Slot> slots = round_slots();
  slot_moments_.assign(slots.size(), nullptr);
  size_t used = 0;
  for (size_t i = 0; i < slots.size(); ++i) {
    if (!slots[i].averaged) continue;
    slot_moments_[i] = &moments_for(slots[i]);
    ++used;
  }
  if (used == moments_.size()) return;
  const auto unused = [&](const Moments& moments) {
    return std::none_of(slot_moments_.begin(), slot_moments_.end(),
                        [&](const Moments* m) { return m == &moments; });
  };
  if (steps_ == 0) {  // fresh zeros of an earlier begin_round: drop those unused
    std::erase_if(moments_, [&](const auto& entry) { return unused(entry.second); });
    return;
  }
  for (const auto& [tensor, moments] : moments_)
    if (unused(moments))
      throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                  name_ + ": the optimizer state holds moments of tensor '" + tensor +
                      "', which the global model of round " + std::to_string(mean_.round()) +
                      " does not have");
}

// The slot's moments: zeros before the first step; afterwards (or restored)
// they must be of the slot's dtype and shape.
ServerOptimizer::Moments& ServerOptimizer::moments_for(const Slot& slot) {
  const std::string& name = *slot.name;
  const int64_t round = kept_ ? kept_->round() : mean_.round();
  const std::string where = "global model of round " + std::to_string(round);
  auto found = moments_.find(name);
  const bool fits = found != moments_.end() && same_dtype(found->second.dtype, slot.dtype) &&
                    found->second.shape == *slot.shape;
  if (fits) return found->second;
  if (steps_ > 0) {
    if (found == moments_.end())
      throw Error(FLARE_ERROR_INVALID_ARGUMENT, name_ + ": tensor '" + name + "' of the " +
                                                    where + " has no moments in the optimizer state");
    throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                name_ + ": tensor '" + name + "' is " + describe(slot.dtype, *slot.shape) +
                    " in the " + where + ", its moments in the optimizer state are " +
                    describe(found->second.dtype, found->second.shape));
  }
  Moments fresh;
  fresh.dtype = slot.dtype;
  fresh.shape = *slot.shape;
  fresh.m.assign(slot.bytes, std::byte{0});  // 0.0 in both float types
  if (has_second_moment()) fresh.v.assign(slot.bytes, std::byte{0});
  fresh.m_name = (has_second_moment() ? "m/" : "momentum/") + name;
  fresh.v_name = "v/" + name;
  return moments_.insert_or_assign(name, std::move(fresh)).first->second;
}

Step ServerOptimizer::step_of_round() const {
  Step step = step_;
  if (bias_correction_) {
    const double t = static_cast<double>(steps_ + 1);
    step.eta = step_.eta * std::sqrt(1.0 - std::pow(step_.beta2, t)) /
               (1.0 - std::pow(step_.beta1, t));
  }
  return step;
}

void ServerOptimizer::step_block(const Step& step, size_t i, size_t a, std::byte* result,
                                 const std::byte* global, double scale, size_t n) {
  Moments& mo = *slot_moments_[i];
  auto run = [&]<class T>(T*) {
    T* v = mo.v.empty() ? nullptr : reinterpret_cast<T*>(mo.v.data()) + a;
    apply(step, reinterpret_cast<T*>(result), reinterpret_cast<const T*>(global) + a,
          reinterpret_cast<T*>(mo.m.data()) + a, v, scale, n);
  };
  if (mo.dtype.bits == 32) run(static_cast<float*>(nullptr));
  else run(static_cast<double*>(nullptr));
}

std::vector<flare_named_tensor> ServerOptimizer::finalize() {
  const Step step = step_of_round();
  std::vector<flare_named_tensor> result;
  int64_t round = 0;
  if (kept_) {
    round = kept_->round();
    result = kept_->finalize([&](size_t i, size_t a, std::byte* block, size_t n) {
      step_block(step, i, a, block, kept_globals_[i], 1.0, n);
    });
  } else {
    round = mean_.round();
    double scale = mean_.close_round();
    if (mean_.summation() == agg::Summation::Compensated) {
      mean_.finish_mean(scale);  // the step then reads the mean itself
      scale = 1.0;
    }
    std::vector<agg::TensorSum>& slots = mean_.slots();
    agg::for_each_chunk_of(
        mean_.averaged_sizes(),
        [&](size_t i, size_t a, size_t b) {
          const size_t bytes = slots[i].element_bytes;
          step_block(step, i, a, slots[i].value.data() + a * bytes, mean_.global(i), scale, b - a);
        },
        agg::max_threads());
    result = mean_.result_views();
  }
  ++steps_;
  host_.debug(name_ + ": round " + std::to_string(round) + ": server step " +
              std::to_string(steps_) + " with eta " + std::to_string(step.eta));
  return result;
}

AggregatorState ServerOptimizer::state() {
  AggregatorState state;
  state.meta = {{"optimizer", name_}, {"steps", steps_}};
  if (steps_ == 0) return state;
  // In name order: the same state lists the same tensors the same way.
  std::map<std::string, Moments*> ordered;
  for (auto& [tensor, moments] : moments_) ordered.emplace(tensor, &moments);
  for (auto& [tensor, mo] : ordered) {
    const auto ndim = static_cast<int32_t>(mo->shape.size());
    state.tensors.push_back(
        tensor_view(mo->m_name.c_str(), mo->m.data(), mo->dtype, mo->shape.data(), ndim));
    if (has_second_moment())
      state.tensors.push_back(
          tensor_view(mo->v_name.c_str(), mo->v.data(), mo->dtype, mo->shape.data(), ndim));
  }
  return state;
}

void ServerOptimizer::set_state(std::span<const flare_named_tensor> tensors,
                                const nlohmann::json& meta) {
  const std::string where = name_ + ": state: ";
  if (!meta.is_object() || !meta.contains("optimizer") || !meta["optimizer"].is_string())
    throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                where + "meta " + meta.dump() + " does not name its optimizer");
  if (meta["optimizer"] != name_)
    throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                where + "it is the state of optimizer " + meta["optimizer"].dump() + ", not of " +
                    name_);
  if (!meta.contains("steps") || !meta["steps"].is_number_integer() || meta["steps"].get<int64_t>() < 0)
    throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                where + "meta " + meta.dump() + " has no count of steps (an integer >= 0)");
  const int64_t steps = meta["steps"].get<int64_t>();
  if (steps == 0 && !tensors.empty())
    throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                where + "holds moments but no step was taken (steps 0)");

  const std::string m_prefix = has_second_moment() ? "m/" : "momentum/";
  std::unordered_map<std::string, Moments> restored;
  for (const flare_named_tensor& t : tensors) {
    const std::string name = t.name ? t.name : "";
    const bool is_m = name.starts_with(m_prefix), is_v = has_second_moment() && name.starts_with("v/");
    if (!is_m && !is_v)
      throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                  where + "tensor '" + name + "' is not one of " + name_ + "'s moments (" + m_prefix +
                      "<tensor>" + (has_second_moment() ? ", v/<tensor>" : "") + ")");
    const DLTensor& d = t.tensor;
    const bool float_type = d.dtype.code == kDLFloat && d.dtype.lanes == 1 &&
                            (d.dtype.bits == 32 || d.dtype.bits == 64);
    if (!float_type || d.device.device_type != kDLCPU || !is_row_major(d) || d.ndim < 0 ||
        (d.ndim > 0 && !d.shape) || (!d.data && num_elements(d) > 0))
      throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                  where + "tensor '" + name + "' is not a dense float32/float64 CPU tensor");
    const std::string tensor = name.substr(is_m ? m_prefix.size() : 2);
    Moments& mo = restored[tensor];
    const std::vector<int64_t> shape(d.shape, d.shape + d.ndim);
    if (!mo.m_name.empty() || !mo.v_name.empty()) {
      if (!same_dtype(mo.dtype, d.dtype) || mo.shape != shape)
        throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                    where + "the moments of tensor '" + tensor + "' differ in dtype or shape (" +
                        describe(mo.dtype, mo.shape) + " and " + describe(d.dtype, shape) + ")");
    }
    mo.dtype = d.dtype;
    mo.shape = shape;
    std::vector<std::byte>& into = is_m ? mo.m : mo.v;
    if (!(is_m ? mo.m_name : mo.v_name).empty())
      throw Error(FLARE_ERROR_INVALID_ARGUMENT, where + "tensor '" + name + "' appears twice");
    (is_m ? mo.m_name : mo.v_name) = name;
    const auto* data = static_cast<const std::byte*>(d.data) + d.byte_offset;
    into.assign(data, data + num_bytes(d));
  }
  std::map<std::string, Moments*> ordered;  // the first at fault in name order
  for (auto& [tensor, mo] : restored) ordered.emplace(tensor, &mo);
  for (auto& [tensor, mo_ptr] : ordered) {
    Moments& mo = *mo_ptr;
    if (mo.m_name.empty())
      throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                  where + "tensor '" + tensor + "' has no " + m_prefix + " moment");
    if (has_second_moment() && mo.v_name.empty())
      throw Error(FLARE_ERROR_INVALID_ARGUMENT, where + "tensor '" + tensor + "' has no v/ moment");
    mo.v_name = "v/" + tensor;
  }
  moments_ = std::move(restored);
  slot_moments_.clear();
  steps_ = steps;
}

}  // namespace flare::fedopt
