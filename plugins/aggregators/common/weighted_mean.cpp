#include "weighted_mean.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <memory>
#include <utility>

#include "flat_math.hpp"
#include "parallel_chunks.hpp"
#include "tensor_checks.hpp"

namespace flare::agg {

namespace {

bool is_averaged(DLDataType t) { return is_float(t, 32) || is_float(t, 64); }

const char* weighting_name(Weighting w) {
  switch (w) {
    case Weighting::NumSamples: return "num_samples";
    case Weighting::NumSteps: return "num_steps";
    case Weighting::Uniform: return "uniform";
  }
  return "?";
}

bool weights_part(const flare_update_chunk& chunk) {
  if (!FLARE_HAS_FIELD(&chunk, flare_update_chunk, data))
    throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                "update chunk struct_size " + std::to_string(chunk.struct_size) +
                    " is too small for ABI 1.3");
  return chunk.part == FLARE_UPDATE_WEIGHTS;
}

}  // namespace

ConfigSchema WeightedMean::add_options(ConfigSchema schema) {
  schema.choice("weight", {"num_samples", "num_steps", "uniform"})
      .choice("sum", {"float32", "compensated"});
  return schema;
}

WeightedMean::Settings WeightedMean::settings_from(const nlohmann::json& config) {
  Settings s;
  const std::string mode = config.value("weight", "num_samples");
  if (mode == "num_steps") s.weighting = Weighting::NumSteps;
  else if (mode == "uniform") s.weighting = Weighting::Uniform;
  if (config.value("sum", "float32") == "compensated") s.summation = Summation::Compensated;
  return s;
}

WeightedMean::WeightedMean(std::string aggregator, Settings settings, Host host)
    : aggregator_(std::move(aggregator)), settings_(settings), host_(host) {
  host_.debug(aggregator_ + ": weighting updates by " + weighting_name(settings_.weighting) +
              (settings_.summation == Summation::Compensated ? ", compensated float32 sums"
                                                             : ", float32 sums"));
}

void WeightedMean::begin_round(int64_t round, std::span<const flare_named_tensor> model) {
  started_ = false;  // a begin_round that throws leaves no usable round
  finished_ = false;
  in_flight_.clear();  // updates of the last round are gone with it
  // Last round's buffers are reused for tensors of the same name: a big
  // model's every round then starts without allocating or faulting in pages.
  std::unordered_map<std::string, TensorSum> reusable;
  for (TensorSum& old : slots_) reusable.emplace(old.name, std::move(old));
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
                      "; " + aggregator_ + " averages float32/float64 and copies integer tensors");
    if (!index_.emplace(name, slots_.size()).second)
      throw Error(FLARE_ERROR_INVALID_ARGUMENT, where + ": tensor '" + name + "' appears twice");
    TensorSum slot;
    if (const auto old = reusable.find(name); old != reusable.end()) slot = std::move(old->second);
    slot.name = name;
    slot.dtype = t.tensor.dtype;
    slot.shape.assign(t.tensor.shape, t.tensor.shape + t.tensor.ndim);
    slot.count = static_cast<size_t>(flare::num_elements(t.tensor));
    slot.element_bytes = (t.tensor.dtype.bits + 7) / 8;
    slot.averaged = is_averaged(slot.dtype);
    slot.reset(settings_.summation);
    slots_.push_back(std::move(slot));
  }
  matched_.assign(slots_.size(), nullptr);
  averaged_sizes_.clear();
  for (const TensorSum& slot : slots_) averaged_sizes_.push_back(slot.averaged ? slot.count : 0);
  if (settings_.keep_global) copy_global(model);
  round_ = round;
  total_weight_ = 0;
  accepted_ = 0;
  started_ = true;
}

// On all cores: a big model's copy is a memory-bound pass like the fold.
void WeightedMean::copy_global(std::span<const flare_named_tensor> model) {
  global_views_.assign(slots_.size(), nullptr);
  // A 1.4 host keeps the model valid and unchanged until finalize: no copy
  // (a model's worth of memory and a pass over it saved every round).
  if (FLARE_HAS_FIELD(host_.services(), flare_host_services, release_pages)) {
    globals_.clear();
    for (size_t i = 0; i < slots_.size(); ++i) global_views_[i] = data_of(model[i].tensor);
    return;
  }
  globals_.resize(slots_.size());
  std::vector<size_t> sizes(slots_.size());
  for (size_t i = 0; i < slots_.size(); ++i) {
    globals_[i].resize(slots_[i].value.size());
    sizes[i] = slots_[i].count;
  }
  for_each_chunk_of(
      sizes,
      [&](size_t i, size_t a, size_t b) {
        const size_t bytes = slots_[i].element_bytes;
        std::memcpy(globals_[i].data() + a * bytes, data_of(model[i].tensor) + a * bytes,
                    (b - a) * bytes);
      },
      max_threads());
  for (size_t i = 0; i < slots_.size(); ++i) global_views_[i] = globals_[i].data();
}

void WeightedMean::accept(const flare_site_update& update) {
  const std::string where = site_of(update);
  const double weight = checked_header(where, update);
  match(where, update);
  fold_if_finite(where, weight);
  // Folded: the integer tensors too, which cannot fail.
  for (size_t i = 0; i < slots_.size(); ++i)
    if (!slots_[i].averaged)
      std::memcpy(slots_[i].value.data(), data_of(matched_[i]->tensor), slots_[i].value.size());
  for (TensorSum& slot : slots_) slot.mark_written(slot.count);
  count_in(where, weight);
}

void WeightedMean::begin_update(uint64_t id, const flare_site_update& header) {
  const std::string where = site_of(header);
  const double weight = checked_header(where, header);
  if (in_flight_.contains(id))
    throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                where + ": update id " + std::to_string(id) + " is already in flight");
  InFlight update{where, weight, std::vector<uint64_t>(slots_.size(), 0), {}};
  update.integers.resize(slots_.size());
  for (size_t i = 0; i < slots_.size(); ++i)
    if (!slots_[i].averaged) update.integers[i].resize(slots_[i].value.size());
  in_flight_.emplace(id, std::move(update));
}

// A piece is folded on the calling thread: threads started and joined per
// 4 MiB piece halved the interleaved fold whenever the machine was busy (the
// join waits for a descheduled helper) and gained nothing when it was quiet
// (bench/RESULTS.md).
void WeightedMean::accept_chunk(uint64_t id, const flare_update_chunk& chunk) {
  InFlight& update = in_flight(id, "accept_chunk");
  if (!weights_part(chunk)) return;  // no use for aux tensors
  TensorSum& slot = checked_chunk(update, chunk);
  const size_t first = chunk.element_offset, n = chunk.num_elements;
  update.covered[chunk.tensor_index] = first + n;
  if (!slot.averaged) {  // staged until the update completes
    std::memcpy(update.integers[chunk.tensor_index].data() + first * slot.element_bytes,
                chunk.data, n * slot.element_bytes);
    return;
  }
  slot.fold(chunk.data, first, first + n, update.weight, settings_.summation);
  slot.mark_written(first + n);
}

void WeightedMean::retract_chunk(uint64_t id, const flare_update_chunk& chunk) {
  const InFlight& update = in_flight(id, "retract_chunk");
  if (!weights_part(chunk)) return;
  TensorSum& slot = slots_[checked_index(update, chunk)];
  if (!slot.averaged) return;  // staged: dropped with the update
  if (chunk.element_offset + chunk.num_elements > update.covered[chunk.tensor_index])
    throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                update.where + ": retract_chunk of tensor '" + slot.name +
                    "' elements that were never accepted");
  const size_t first = chunk.element_offset;
  slot.fold(chunk.data, first, first + chunk.num_elements, -update.weight, settings_.summation);
}

void WeightedMean::end_update(uint64_t id) {
  InFlight& update = in_flight(id, "end_update");
  for (size_t i = 0; i < slots_.size(); ++i)
    if (update.covered[i] != slots_[i].count)
      throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                  update.where + ": update ended with " + std::to_string(update.covered[i]) +
                      " of the " + std::to_string(slots_[i].count) + " elements of tensor '" +
                      slots_[i].name + "'");
  for (size_t i = 0; i < slots_.size(); ++i)
    if (!slots_[i].averaged) slots_[i].value = std::move(update.integers[i]);
  const std::string where = update.where;
  const double weight = update.weight;
  in_flight_.erase(id);
  count_in(where, weight);
}

void WeightedMean::abort_update(uint64_t id) noexcept {
  in_flight_.erase(id);  // its chunks were retracted: nothing else to undo
}

double WeightedMean::close_round() {
  if (finished_)
    throw Error(FLARE_ERROR_INVALID_ARGUMENT, "round " + std::to_string(round_) +
                                                  " was already finalized (its sums are its result)");
  if (!in_flight_.empty())
    throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                "round " + std::to_string(round_) + ": " + std::to_string(in_flight_.size()) +
                    " update(s) still in flight (end or abort them first), e.g. from " +
                    in_flight_.begin()->second.where);
  if (!started_ || accepted_ == 0)
    throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                "round " + std::to_string(round_) + ": no update was accepted, nothing to average");
  started_ = false;
  finished_ = true;
  return 1.0 / total_weight_;
}

void WeightedMean::finish_mean(double scale) {
  for_each_chunk_of(
      averaged_sizes_,
      [&](size_t i, size_t a, size_t b) { slots_[i].finish(a, b, scale, settings_.summation); },
      max_threads());
}

std::vector<flare_named_tensor> WeightedMean::result_views() {
  std::vector<flare_named_tensor> out;
  out.reserve(slots_.size());
  for (TensorSum& slot : slots_)
    out.push_back(flare::tensor_view(slot.name.c_str(), slot.value.data(), slot.dtype,
                                     slot.shape.data(), static_cast<int32_t>(slot.shape.size())));
  return out;
}

std::string WeightedMean::site_of(const flare_site_update& update) {
  return flare::agg::site_of(update);
}

double WeightedMean::checked_header(const std::string& where,
                                    const flare_site_update& update) const {
  if (!FLARE_HAS_FIELD(&update, flare_site_update, num_steps))
    throw Error(FLARE_ERROR_INVALID_ARGUMENT, "site update struct_size " +
                                                  std::to_string(update.struct_size) +
                                                  " is too small for ABI 1");
  if (finished_)
    throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                where + ": update after round " + std::to_string(round_) + " was finalized");
  if (!started_) throw Error(FLARE_ERROR_INVALID_ARGUMENT, where + ": update before begin_round");
  if (update.round != round_)
    throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                where + ": update is for round " + std::to_string(update.round) +
                    ", aggregating round " + std::to_string(round_));
  return checked_weight(where, settings_.weighting, update);
}

double checked_weight(const std::string& where, Weighting weighting,
                      const flare_site_update& update) {
  double weight = 0;
  switch (weighting) {
    case Weighting::NumSamples: weight = update.num_samples; break;
    case Weighting::NumSteps: weight = static_cast<double>(update.num_steps); break;
    case Weighting::Uniform: weight = 1.0; break;
  }
  if (!std::isfinite(weight) || weight <= 0)
    throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                where + ": weight " + weighting_name(weighting) + " = " +
                    std::to_string(weight) + " must be finite and > 0");
  return weight;
}

void WeightedMean::count_in(const std::string& where, double weight) {
  total_weight_ += weight;
  ++accepted_;
  host_.debug(aggregator_ + ": round " + std::to_string(round_) + ": folded in " + where +
              " with weight " + std::to_string(weight));
}

WeightedMean::InFlight& WeightedMean::in_flight(uint64_t id, const char* call) {
  const auto found = in_flight_.find(id);
  if (found == in_flight_.end())
    throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                std::string(call) + ": no update " + std::to_string(id) + " is in flight");
  return found->second;
}

// The host checked the chunk; these cheap checks keep a host bug from
// writing out of bounds.
size_t WeightedMean::checked_index(const InFlight& update, const flare_update_chunk& chunk) const {
  if (chunk.tensor_index >= slots_.size())
    throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                update.where + ": chunk of tensor index " + std::to_string(chunk.tensor_index) +
                    ", the global model has " + std::to_string(slots_.size()) + " tensors");
  const TensorSum& slot = slots_[chunk.tensor_index];
  if (!chunk.tensor || !same_dtype(chunk.tensor->tensor.dtype, slot.dtype) ||
      chunk.element_offset > slot.count || chunk.num_elements > slot.count - chunk.element_offset ||
      (chunk.num_elements > 0 && !chunk.data))
    throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                update.where + ": chunk of tensor '" + slot.name + "' (elements " +
                    std::to_string(chunk.element_offset) + " + " +
                    std::to_string(chunk.num_elements) + ") does not fit its " +
                    std::to_string(slot.count) + " " + describe_dtype(slot.dtype) + " elements");
  return chunk.tensor_index;
}

TensorSum& WeightedMean::checked_chunk(const InFlight& update, const flare_update_chunk& chunk) {
  TensorSum& slot = slots_[checked_index(update, chunk)];
  if (chunk.element_offset != update.covered[chunk.tensor_index])
    throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                update.where + ": chunk of tensor '" + slot.name + "' starts at element " +
                    std::to_string(chunk.element_offset) + ", expected " +
                    std::to_string(update.covered[chunk.tensor_index]));
  return slot;
}

void WeightedMean::match(const std::string& where, const flare_site_update& update) {
  match_update(where, update, std::span<const TensorSum>(slots_), index_, matched_);
}

// Folds the matched update in, in one parallel pass that checks each block
// just before folding it (a separate check pass read the update twice). On
// a block holding NaN or infinity it takes back what it folded (a fold with
// -weight: within the bound of flat_math.hpp, as a retracted streamed
// piece) and throws, so a rejected update leaves only that rounding.
void WeightedMean::fold_if_finite(const std::string& where, double weight) {
  constexpr size_t chunk = kChunkElements;
  folded_.resize(slots_.size());
  for (size_t i = 0; i < slots_.size(); ++i)
    folded_[i].assign((averaged_sizes_[i] + chunk - 1) / chunk, 0);
  std::atomic<bool> refused{false};
  const auto x_of = [&](size_t i, size_t a) {
    return data_of(matched_[i]->tensor) + a * slots_[i].element_bytes;
  };
  for_each_chunk_of(
      averaged_sizes_,
      [&](size_t i, size_t a, size_t b) {
        const size_t n = slots_[i].fold_finite(x_of(i, a), a, b, weight, settings_.summation);
        folded_[i][a / chunk] = n;  // each chunk is one thread's alone
        if (n < b - a) refused.store(true, std::memory_order_relaxed);
      },
      max_threads());
  if (!refused.load()) return;
  for_each_chunk_of(
      averaged_sizes_,
      [&](size_t i, size_t a, size_t) {
        if (const size_t n = folded_[i][a / chunk])
          slots_[i].fold(x_of(i, a), a, a + n, -weight, settings_.summation);
      },
      max_threads());
  check_finite(where);  // names the first tensor at fault, in the model's order
  throw Error(FLARE_ERROR_INTERNAL, where + ": a block of the update was not finite, "
                                            "but a second look found every tensor finite");
}

// One parallel pass over every averaged tensor of the update.
void WeightedMean::check_finite(const std::string& where) {
  std::vector<const std::byte*> data(slots_.size());
  for (size_t i = 0; i < slots_.size(); ++i) data[i] = data_of(matched_[i]->tensor);
  check_all_finite(where, std::span<const TensorSum>(slots_),
                   std::span<const std::byte* const>(data), averaged_sizes_);
}

}  // namespace flare::agg
