#include "plugin_host/plugin_instances.hpp"

namespace flare::host {
namespace {

std::string call_message(const LoadedPlugin& plugin, const std::string& function,
                         flare_error_code code, const std::string& plugin_message) {
  return "plugin '" + plugin.name() + "' (" + plugin.path().string() + "): " + function +
         " failed with " + error_code_name(code) + ": " + plugin_message;
}

// A plugin that reports success but breaks the ABI's promises.
[[noreturn]] void broken_promise(const LoadedPlugin& plugin, const std::string& function,
                                 const std::string& what) {
  throw PluginCallError(plugin, function, FLARE_ERROR_INTERNAL, what);
}

std::span<const flare_named_tensor> views(const LoadedPlugin& plugin, const char* function,
                                          const flare_named_tensor* data, size_t count) {
  if (count > 0 && !data)
    broken_promise(plugin, function, "returned " + std::to_string(count) + " tensors at NULL");
  return {data, count};
}

}  // namespace

PluginCallError::PluginCallError(const LoadedPlugin& plugin, const std::string& function,
                                 flare_error_code code, const std::string& plugin_message)
    : std::runtime_error(call_message(plugin, function, code, plugin_message)),
      code_(code),
      plugin_message_(plugin_message) {}

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
    : plugin_(plugin), api_(&plugin.trainer_api()) {
  flare_worker_info info = worker;
  info.struct_size = sizeof(info);
  flare_trainer* handle = nullptr;
  check("create", api_->create(config_json.c_str(), &info, host.table(), &handle));
  if (!handle) broken_promise(plugin_, "create", "returned no trainer handle");
  handle_ = {handle, api_->destroy};
}

void TrainerInstance::check(const char* function, flare_error* error) const {
  if (!error) return;
  const ErrorPtr owned(error);
  throw PluginCallError(plugin_, function, error_code(error), std::string(error_message(error)));
}

std::span<const flare_named_tensor> TrainerInstance::get_weights() {
  const flare_named_tensor* out = nullptr;
  size_t count = 0;
  check("get_weights", api_->get_weights(handle_.get(), &out, &count));
  return views(plugin_, "get_weights", out, count);
}

void TrainerInstance::set_weights(std::span<const flare_named_tensor> weights) {
  check("set_weights", api_->set_weights(handle_.get(), weights.data(), weights.size()));
}

std::string TrainerInstance::evaluate(const std::string& split) {
  const char* metrics = nullptr;
  check("evaluate", api_->evaluate(handle_.get(), split.c_str(), &metrics));
  if (!metrics) broken_promise(plugin_, "evaluate", "returned no metrics JSON");
  return metrics;
}

TrainResult TrainerInstance::train(const flare_round_info& round) {
  flare_round_info info = round;
  info.struct_size = sizeof(info);
  TrainResult result;
  result.raw.struct_size = sizeof(result.raw);
  check("train", api_->train(handle_.get(), &info, &result.raw));
  // A plugin may only shrink the size we offered, never grow it.
  if (result.raw.struct_size > sizeof(result.raw)) result.raw.struct_size = sizeof(result.raw);
  views(plugin_, "train", result.raw.weights, result.raw.num_weights);
  return result;
}

// ----------------------------------------------------------- AggregatorInstance

AggregatorInstance::AggregatorInstance(const LoadedPlugin& plugin,
                                       const std::string& config_json,
                                       const HostServices& host)
    : plugin_(plugin), api_(&plugin.aggregator_api()) {
  flare_aggregator* handle = nullptr;
  check("create", api_->create(config_json.c_str(), host.table(), &handle));
  if (!handle) broken_promise(plugin_, "create", "returned no aggregator handle");
  handle_ = {handle, api_->destroy};
}

void AggregatorInstance::check(const char* function, flare_error* error) const {
  if (!error) return;
  const ErrorPtr owned(error);
  throw PluginCallError(plugin_, function, error_code(error), std::string(error_message(error)));
}

void AggregatorInstance::begin_round(int64_t round,
                                     std::span<const flare_named_tensor> global_model) {
  check("begin_round",
        api_->begin_round(handle_.get(), round, global_model.data(), global_model.size()));
}

void AggregatorInstance::accept(const flare_site_update& update) {
  flare_site_update copy = update;
  copy.struct_size = sizeof(copy);
  check("accept", api_->accept(handle_.get(), &copy));
}

void AggregatorInstance::accept(SiteUpdateFields update) {
  const SiteUpdateStruct c_update(std::move(update));
  accept(c_update.raw());
}

std::span<const flare_named_tensor> AggregatorInstance::finalize() {
  const flare_named_tensor* out = nullptr;
  size_t count = 0;
  check("finalize", api_->finalize(handle_.get(), &out, &count));
  return views(plugin_, "finalize", out, count);
}

}  // namespace flare::host
