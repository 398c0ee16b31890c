// RAII handles on trainer and aggregator plugins. Every call goes through a
// PluginCall (plugin_call.hpp): a flare_error a plugin returns, or a result
// the host refuses (result_checks.hpp), becomes a PluginCallError, and a crash
// is reported as the plugin's. The plugin's handle is destroyed with the instance.
//
// Lifetimes: an instance keeps its own reference to the plugin library (a copy
// of the LoadedPlugin), so the library may be dropped first. The HostServices
// passed at construction is borrowed and must outlive the instance. Every
// span / string_view an instance returns points into plugin memory and stays
// valid only until the next call on that instance (finalize(): until the next
// begin_round) or its destruction. One thread at a time per instance.
#pragma once

#include <flare/plugin_abi.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "plugin_host/host_services.hpp"
#include "plugin_host/plugin_call.hpp"
#include "plugin_host/plugin_loader.hpp"
#include "plugin_host/result_checks.hpp"
#include "plugin_host/site_update.hpp"

namespace flare::host {

// What train() handed back, checked. `raw` was zero-filled with struct_size
// set by the host before the call; the plugin's struct_size says which fields
// it wrote, and the accessors read only those. Views valid until the next call
// on the TrainerInstance that produced it.
struct TrainResult {
  flare_train_result raw{};

  std::span<const flare_named_tensor> weights() const;
  std::span<const flare_named_tensor> aux() const;
  double num_samples() const;
  int64_t num_steps() const;
  std::string_view metrics_json() const;  // "" when the plugin gave none
  std::string_view meta_json() const;     // "" when the plugin gave none
};

// Destroys a plugin handle inside a PluginCall, so a crash there is reported too.
template <class Handle>
struct PluginDestroy {
  LoadedPlugin plugin;
  void (*destroy)(Handle*) = nullptr;
  void operator()(Handle* handle) const {
    const PluginCall call(plugin, "destroy");
    destroy(handle);
  }
};

class TrainerInstance {
 public:
  // `config_json` and `worker` are borrowed for the call (the plugin copies
  // them); worker.struct_size is set here.
  TrainerInstance(const LoadedPlugin& plugin, const std::string& config_json,
                  const flare_worker_info& worker, const HostServices& host);

  // Plugin-owned views; valid until the next call on this instance. Once
  // set_weights was called, every model handed back (here and by train) must
  // have the layout of the last one set.
  std::span<const flare_named_tensor> get_weights();
  // The plugin copies `weights` during the call.
  void set_weights(std::span<const flare_named_tensor> weights);
  // The metrics JSON of `split` (copied): an object of numbers or labels.
  std::string evaluate(const std::string& split);
  TrainResult train(const flare_round_info& round);

  const LoadedPlugin& plugin() const { return plugin_; }

 private:
  LoadedPlugin plugin_;  // declared first: destroyed after the handle
  const flare_trainer_api_v1* api_;
  std::unique_ptr<flare_trainer, PluginDestroy<flare_trainer>> handle_;
  std::optional<ModelLayout> model_layout_;  // of the last set_weights
};

class AggregatorInstance {
 public:
  // `config_json` is borrowed for the call.
  AggregatorInstance(const LoadedPlugin& plugin, const std::string& config_json,
                     const HostServices& host);

  // Starts `round` from the current global model (copied by the plugin as needed).
  void begin_round(int64_t round, std::span<const flare_named_tensor> global_model);
  // Folds one site's update in; borrowed for the call. struct_size is set here.
  void accept(const flare_site_update& update);
  // The same, from the host's terms (the C struct is built here).
  void accept(SiteUpdateFields update);
  // The next global model, checked against the layout of begin_round's:
  // plugin-owned views, valid until the next begin_round or destruction of
  // this instance.
  std::span<const flare_named_tensor> finalize();

  // Streamed updates (ABI 1.3; the contract is plugin_abi.h's). True when the
  // plugin folds updates as they stream in and this instance keeps none; otherwise the calls below must
  // not be made (they throw std::logic_error) and updates go through accept.
  bool folds_chunks() const;
  // Opens update `id` from its header (weights and aux are ignored: the
  // plugin is given none). struct_size is set here.
  void begin_update(uint64_t id, SiteUpdateFields header);
  // A chunk the caller has checked; borrowed for the call. struct_size is set here.
  void accept_chunk(uint64_t id, const flare_update_chunk& chunk);
  void retract_chunk(uint64_t id, const flare_update_chunk& chunk);
  void end_update(uint64_t id);
  // Never throws: a plugin that crashes here is reported by the crash handler;
  // a logic error (no streamed updates) is logged and ignored.
  void abort_update(uint64_t id) noexcept;

  // ABI 1.4. True when this instance keeps every update until finalize
  // (FLARE_AGGREGATOR_KEEPS_UPDATES, from its instance_properties or the
  // table's properties): accept's views must then stay valid until finalize
  // returns or the next begin_round, and folds_chunks() is false.
  bool keeps_updates() const;
  // True when the plugin has state across rounds (get_state / set_state).
  bool has_state() const;
  struct State {
    std::span<const flare_named_tensor> tensors;  // checked; plugin-owned
    std::string_view meta_json;                   // a JSON object, "" for none
  };
  // Valid until the next call on this instance. Throws std::logic_error
  // without state (check has_state()).
  State get_state();
  // Borrowed for the call; before the first begin_round.
  void set_state(std::span<const flare_named_tensor> tensors, const std::string& meta_json);

  const LoadedPlugin& plugin() const { return plugin_; }

 private:
  // Throws std::logic_error when the plugin does not fold chunks.
  void require_chunks(const char* function) const;
  // Reads properties_ once after create; refuses bits this host does not know.
  void read_properties();

  LoadedPlugin plugin_;
  const flare_host_services* host_;  // for abort_update's log
  const flare_aggregator_api_v1* api_;
  std::unique_ptr<flare_aggregator, PluginDestroy<flare_aggregator>> handle_;
  std::optional<ModelLayout> model_layout_;  // of the last begin_round
  uint64_t properties_ = 0;  // this instance's (instance_properties), read after create
};

}  // namespace flare::host
