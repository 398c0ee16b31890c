#include "plugin_host/plugin_instances.hpp"

#include <sstream>
#include <stdexcept>
#include <string>

namespace flare::host {

// ------------------------------------------------------------------ TrainResult

std::span<const flare_named_tensor> TrainResult::weights() const {
  if (!FLARE_HAS_FIELD(&raw, flare_train_result, num_weights) || !raw.weights) return {};
  return {raw.weights, raw.num_weights};
}

std::span<const flare_named_tensor> TrainResult::aux() const {
  if (!FLARE_HAS_FIELD(&raw, flare_train_result, num_aux) || !raw.aux) return {};
  return {raw.aux, raw.num_aux};
}

double TrainResult::num_samples() const {
  return FLARE_HAS_FIELD(&raw, flare_train_result, num_samples) ? raw.num_samples : 0.0;
}

int64_t TrainResult::num_steps() const {
  return FLARE_HAS_FIELD(&raw, flare_train_result, num_steps) ? raw.num_steps : 0;
}

std::string_view TrainResult::metrics_json() const {
  if (!FLARE_HAS_FIELD(&raw, flare_train_result, metrics_json) || !raw.metrics_json) return {};
  return raw.metrics_json;
}

std::string_view TrainResult::meta_json() const {
  if (!FLARE_HAS_FIELD(&raw, flare_train_result, meta_json) || !raw.meta_json) return {};
  return raw.meta_json;
}

// -------------------------------------------------------------- TrainerInstance

TrainerInstance::TrainerInstance(const LoadedPlugin& plugin, const std::string& config_json,
                                 const flare_worker_info& worker, const HostServices& host)
    : plugin_(plugin),
      api_(&plugin.trainer_api()),
      handle_(nullptr, {plugin, plugin.trainer_api().destroy}) {
  flare_worker_info info = worker;
  info.struct_size = sizeof(info);
  flare_trainer* handle = nullptr;
  PluginCall call(plugin_, "create");
  call.check(api_->create(config_json.c_str(), &info, host.table(), &handle));
  if (!handle) call.refuse("no trainer handle");
  handle_.reset(handle);
}

std::span<const flare_named_tensor> TrainerInstance::get_weights() {
  PluginCall call(plugin_, "get_weights");
  const flare_named_tensor* out = nullptr;
  size_t count = 0;
  call.check(api_->get_weights(handle_.get(), &out, &count));
  return checked_tensors(call, "the model", out, count, TensorRole::Model,
                         model_layout_ ? &*model_layout_ : nullptr);
}

void TrainerInstance::set_weights(std::span<const flare_named_tensor> weights) {
  PluginCall call(plugin_, "set_weights");
  call.check(api_->set_weights(handle_.get(), weights.data(), weights.size()));
  model_layout_ = layout_of(weights);
}

std::string TrainerInstance::evaluate(const std::string& split) {
  PluginCall call(plugin_, "evaluate");
  const char* metrics = nullptr;
  call.check(api_->evaluate(handle_.get(), split.c_str(), &metrics));
  return std::string(checked_json(call, "its metrics JSON", metrics, JsonRole::Evaluation));
}

TrainResult TrainerInstance::train(const flare_round_info& round) {
  flare_round_info info = round;
  info.struct_size = sizeof(info);
  TrainResult result;
  result.raw.struct_size = sizeof(result.raw);
  PluginCall call(plugin_, "train");
  call.check(api_->train(handle_.get(), &info, &result.raw));
  // A plugin may only shrink the size we offered, never grow it.
  if (result.raw.struct_size > sizeof(result.raw)) result.raw.struct_size = sizeof(result.raw);
  const flare_train_result& r = result.raw;
  if (!FLARE_HAS_FIELD(&r, flare_train_result, num_weights)) call.refuse("no weights");
  checked_tensors(call, "the model", r.weights, r.num_weights, TensorRole::Model,
                  model_layout_ ? &*model_layout_ : nullptr);
  if (FLARE_HAS_FIELD(&r, flare_train_result, num_aux))
    checked_tensors(call, "aux", r.aux, r.num_aux, TensorRole::Extra);
  if (FLARE_HAS_FIELD(&r, flare_train_result, num_samples))
    check_count(call, "num_samples", r.num_samples);
  if (FLARE_HAS_FIELD(&r, flare_train_result, num_steps))
    check_count(call, "num_steps", static_cast<double>(r.num_steps));
  if (FLARE_HAS_FIELD(&r, flare_train_result, metrics_json))
    checked_json(call, "its metrics JSON", r.metrics_json, JsonRole::Metrics);
  if (FLARE_HAS_FIELD(&r, flare_train_result, meta_json))
    checked_json(call, "its meta JSON", r.meta_json, JsonRole::Object);
  return result;
}

// ----------------------------------------------------------- AggregatorInstance

AggregatorInstance::AggregatorInstance(const LoadedPlugin& plugin,
                                       const std::string& config_json,
                                       const HostServices& host)
    : plugin_(plugin),
      host_(host.table()),
      api_(&plugin.aggregator_api()),
      handle_(nullptr, {plugin, plugin.aggregator_api().destroy}) {
  flare_aggregator* handle = nullptr;
  PluginCall call(plugin_, "create");
  call.check(api_->create(config_json.c_str(), host.table(), &handle));
  if (!handle) call.refuse("no aggregator handle");
  handle_.reset(handle);
  read_properties();
}

void AggregatorInstance::read_properties() {
  if (!FLARE_HAS_FIELD(api_, flare_aggregator_api_v1, set_state)) return;  // 1.0-1.3: none
  properties_ = api_->properties;
  if (!FLARE_HAS_FIELD(api_, flare_aggregator_api_v1, instance_properties) ||
      !api_->instance_properties)
    return;  // the loader checked the table's
  PluginCall call(plugin_, "instance_properties");
  properties_ = api_->instance_properties(handle_.get());
  if (properties_ & ~FLARE_AGGREGATOR_KEEPS_UPDATES) {
    std::ostringstream bits;
    bits << std::hex << (properties_ & ~FLARE_AGGREGATOR_KEEPS_UPDATES);
    call.refuse("its instance's properties have bits this host does not know (0x" + bits.str() +
                ")");
  }
}

void AggregatorInstance::begin_round(int64_t round,
                                     std::span<const flare_named_tensor> global_model) {
  PluginCall call(plugin_, "begin_round");
  call.check(api_->begin_round(handle_.get(), round, global_model.data(), global_model.size()));
  model_layout_ = layout_of(global_model);
}

void AggregatorInstance::accept(const flare_site_update& update) {
  flare_site_update copy = update;
  copy.struct_size = sizeof(copy);
  PluginCall call(plugin_, "accept");
  call.check(api_->accept(handle_.get(), &copy));
}

void AggregatorInstance::accept(SiteUpdateFields update) {
  const SiteUpdateStruct c_update(std::move(update));
  accept(c_update.raw());
}

std::span<const flare_named_tensor> AggregatorInstance::finalize() {
  PluginCall call(plugin_, "finalize");
  const flare_named_tensor* out = nullptr;
  size_t count = 0;
  call.check(api_->finalize(handle_.get(), &out, &count));
  return checked_tensors(call, "the model", out, count, TensorRole::Model,
                         model_layout_ ? &*model_layout_ : nullptr);
}

bool AggregatorInstance::folds_chunks() const {
  // The loader made sure a table with begin_update has all five. An instance
  // keeping updates takes them whole, whatever its table offers.
  return FLARE_HAS_FIELD(api_, flare_aggregator_api_v1, abort_update) && api_->begin_update &&
         !keeps_updates();
}

void AggregatorInstance::require_chunks(const char* function) const {
  if (!folds_chunks())
    throw std::logic_error(std::string(function) + " on aggregator '" + plugin_.name() +
                           "', which takes whole updates only (check folds_chunks())");
}

namespace {

flare_update_chunk with_size(const flare_update_chunk& chunk) {
  flare_update_chunk copy = chunk;
  copy.struct_size = sizeof(copy);
  return copy;
}

}  // namespace

void AggregatorInstance::begin_update(uint64_t id, SiteUpdateFields header) {
  require_chunks("begin_update");
  header.weights = {};
  header.aux = {};
  const SiteUpdateStruct c_header(std::move(header));
  flare_site_update raw = c_header.raw();
  raw.weights = nullptr;
  raw.num_weights = 0;
  raw.aux = nullptr;
  raw.num_aux = 0;
  PluginCall call(plugin_, "begin_update");
  call.check(api_->begin_update(handle_.get(), id, &raw));
}

void AggregatorInstance::accept_chunk(uint64_t id, const flare_update_chunk& chunk) {
  require_chunks("accept_chunk");
  const flare_update_chunk copy = with_size(chunk);
  PluginCall call(plugin_, "accept_chunk");
  call.check(api_->accept_chunk(handle_.get(), id, &copy));
}

void AggregatorInstance::retract_chunk(uint64_t id, const flare_update_chunk& chunk) {
  require_chunks("retract_chunk");
  const flare_update_chunk copy = with_size(chunk);
  PluginCall call(plugin_, "retract_chunk");
  call.check(api_->retract_chunk(handle_.get(), id, &copy));
}

void AggregatorInstance::end_update(uint64_t id) {
  require_chunks("end_update");
  PluginCall call(plugin_, "end_update");
  call.check(api_->end_update(handle_.get(), id));
}

bool AggregatorInstance::keeps_updates() const {
  return (properties_ & FLARE_AGGREGATOR_KEEPS_UPDATES) != 0;
}

bool AggregatorInstance::has_state() const {
  // The loader made sure get_state and set_state come together.
  return FLARE_HAS_FIELD(api_, flare_aggregator_api_v1, set_state) && api_->get_state;
}

AggregatorInstance::State AggregatorInstance::get_state() {
  if (!has_state())
    throw std::logic_error("get_state on aggregator '" + plugin_.name() +
                           "', which has no state (check has_state())");
  PluginCall call(plugin_, "get_state");
  const flare_named_tensor* tensors = nullptr;
  size_t count = 0;
  const char* meta = nullptr;
  call.check(api_->get_state(handle_.get(), &tensors, &count, &meta));
  State state;
  state.tensors = checked_tensors(call, "the state", tensors, count, TensorRole::Extra);
  state.meta_json = checked_json(call, "the state's meta_json", meta, JsonRole::Object);
  return state;
}

void AggregatorInstance::set_state(std::span<const flare_named_tensor> tensors,
                                   const std::string& meta_json) {
  if (!has_state())
    throw std::logic_error("set_state on aggregator '" + plugin_.name() +
                           "', which has no state (check has_state())");
  PluginCall call(plugin_, "set_state");
  call.check(api_->set_state(handle_.get(), tensors.data(), tensors.size(), meta_json.c_str()));
}

void AggregatorInstance::abort_update(uint64_t id) noexcept {
  if (!folds_chunks()) {
    try {
      const std::string message = "abort_update on aggregator '" + plugin_.name() +
                                  "', which takes whole updates only: ignored";
      host_->log(host_->context, FLARE_LOG_ERROR, message.c_str());
    } catch (...) {  // out of memory for the message: nothing to undo anyway
    }
    return;
  }
  const PluginCall call(plugin_, "abort_update");
  api_->abort_update(handle_.get(), id);
}

}  // namespace flare::host
