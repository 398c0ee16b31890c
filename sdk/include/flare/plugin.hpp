// Header-only C++ layer over the C ABI for writing plugins.
//
// A plugin derives from flare::Trainer or flare::Aggregator and names its class
// once with FLARE_TRAINER_PLUGIN / FLARE_AGGREGATOR_PLUGIN. The generated glue
// keeps every exception inside the plugin (turned into a flare_error), keeps the
// memory behind returned views alive for as long as the ABI promises, and
// exports the single entry symbol.
//
// The class may also declare, as static members, what the glue's
// validate_config (ABI 1.2: called before the job starts) checks without
// building the plugin:
//   static flare::ConfigSchema config_schema();  // every option: type, range
//   static void validate_config(const nlohmann::json& config, const WorkerInfo& worker,
//                               Host host);      // a trainer: e.g. its data
//   static void validate_config(const nlohmann::json& config, Host host);  // an aggregator
// create() checks the schema too, before the constructor runs.
#pragma once

#include <flare/config_schema.hpp>
#include <flare/error.hpp>
#include <flare/plugin_abi.h>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

// FLARE_HAS_FIELD (struct_size checks) comes from plugin_abi.h.

namespace flare {

// Plugin-side view of the host's service table. Cheap to copy.
class Host {
 public:
  explicit Host(const flare_host_services* services) : s_(services) {}

  void log(flare_log_level level, const std::string& message) const {
    if (s_->log) s_->log(s_->context, level, message.c_str());
  }
  void info(const std::string& message) const { log(FLARE_LOG_INFO, message); }
  void debug(const std::string& message) const { log(FLARE_LOG_DEBUG, message); }
  void warn(const std::string& message) const { log(FLARE_LOG_WARN, message); }

  void metric(const std::string& name, double value, int64_t step) const {
    if (s_->report_metric) s_->report_metric(s_->context, name.c_str(), value, step);
  }
  void progress(const char* phase, int64_t epoch, int64_t step, int64_t total) const {
    if (s_->report_progress) s_->report_progress(s_->context, phase, epoch, step, total);
  }
  bool cancelled() const { return s_->is_cancelled && s_->is_cancelled(s_->context) != 0; }

  // Collectives: throw flare::Error carrying the host's message on failure.
  void all_reduce(DLTensor& tensor, flare_reduce_op op = FLARE_REDUCE_SUM) const {
    check(s_, s_->all_reduce(s_->context, &tensor, op));
  }
  void broadcast(DLTensor& tensor, int32_t root_rank) const {
    check(s_, s_->broadcast(s_->context, &tensor, root_rank));
  }
  void barrier() const { check(s_, s_->barrier(s_->context)); }

  // An all-reduce in flight (ABI 1.1); waits in its destructor if nobody did,
  // so the reduced memory is never freed under a running reduction.
  class Reduction {
   public:
    Reduction() = default;
    Reduction(Reduction&& other) noexcept
        : s_(other.s_), work_(std::exchange(other.work_, nullptr)) {}
    Reduction& operator=(Reduction&& other) noexcept {
      if (this != &other) {
        release();
        s_ = other.s_;
        work_ = std::exchange(other.work_, nullptr);
      }
      return *this;
    }
    ~Reduction() { release(); }
    // Blocks until the reduction is done; throws flare::Error if it failed.
    void wait() {
      if (!work_) return;
      flare_work* work = std::exchange(work_, nullptr);
      check(s_, s_->wait_work(s_->context, work));
    }

   private:
    friend class Host;
    Reduction(const flare_host_services* s, flare_work* work) : s_(s), work_(work) {}
    void release() noexcept {
      if (!work_) return;
      flare_error* e = s_->wait_work(s_->context, std::exchange(work_, nullptr));
      if (e) s_->error_release(e);
    }
    const flare_host_services* s_ = nullptr;
    flare_work* work_ = nullptr;
  };

  bool has_async_all_reduce() const {
    return FLARE_HAS_FIELD(s_, flare_host_services, wait_work) && s_->all_reduce_start &&
           s_->wait_work;
  }
  // Starts an in-place all-reduce. `tensor.data` must stay alive and untouched
  // until the returned reduction is waited for (or destroyed). A
  // host without ABI 1.1 runs it to completion here (a finished reduction).
  Reduction all_reduce_start(DLTensor& tensor, flare_reduce_op op = FLARE_REDUCE_SUM) const {
    if (!has_async_all_reduce()) {
      all_reduce(tensor, op);
      return {};
    }
    flare_work* work = nullptr;
    check(s_, s_->all_reduce_start(s_->context, &tensor, op, &work));
    return Reduction(s_, work);
  }

  // ABI 1.4 (an aggregator that keeps updates): the range of a kept update
  // is read and may leave memory (still valid). A no-op on an older host.
  void release_pages(const void* data, size_t bytes) const {
    if (FLARE_HAS_FIELD(s_, flare_host_services, release_pages) && s_->release_pages)
      s_->release_pages(s_->context, data, bytes);
  }

  const flare_host_services* services() const { return s_; }

 private:
  static void check(const flare_host_services* s, flare_error* error) {
    if (!error) return;
    Error e(s->error_code(error), s->error_message(error));
    s->error_release(error);
    throw e;
  }
  const flare_host_services* s_;
};

// An owned copy of flare_worker_info.
struct WorkerInfo {
  std::string site_name;
  int32_t site_index = 0;
  int32_t num_sites = 1;
  int32_t rank = 0;
  int32_t world_size = 1;
  int32_t local_rank = 0;
  int32_t local_world_size = 1;
  DLDevice device{kDLCPU, 0};
  int32_t num_threads = 1;
  uint64_t seed = 0;
  std::string data_dir;
  std::string work_dir;
  // The job's [data] table (ABI 1.4; an empty object from an older host):
  // e.g. how the training data is split across sites (flare/data_split.hpp).
  nlohmann::json data = nlohmann::json::object();

  static WorkerInfo from(const flare_worker_info* w) {
    WorkerInfo info;
    if (!w) return info;
    auto str = [](const char* s) { return s ? std::string(s) : std::string(); };
    info.site_name = str(w->site_name);
    info.site_index = w->site_index;
    info.num_sites = w->num_sites;
    info.rank = w->rank;
    info.world_size = w->world_size;
    info.local_rank = w->local_rank;
    info.local_world_size = w->local_world_size;
    info.device = w->device;
    info.num_threads = w->num_threads;
    info.seed = w->seed;
    info.data_dir = str(w->data_dir);
    info.work_dir = str(w->work_dir);
    if (FLARE_HAS_FIELD(w, flare_worker_info, data_json) && w->data_json && *w->data_json)
      info.data = nlohmann::json::parse(w->data_json);
    return info;
  }
};

// What a C++ trainer returns from train(); the glue keeps it alive until the
// next call, so the views in `weights` / `aux` may point into the trainer.
struct TrainOutput {
  std::vector<flare_named_tensor> weights;
  std::vector<flare_named_tensor> aux;
  double num_samples = 0;
  int64_t num_steps = 0;
  nlohmann::json metrics = nlohmann::json::object();
  nlohmann::json meta = nlohmann::json::object();
};

// Base class of a C++ trainer plugin. Constructed as
//   Derived(const nlohmann::json& config, const WorkerInfo& worker, Host host).
class Trainer {
 public:
  virtual ~Trainer() = default;
  // Views valid until the next call on this trainer.
  virtual std::vector<flare_named_tensor> weights() = 0;
  virtual void set_weights(std::span<const flare_named_tensor> weights) = 0;
  virtual nlohmann::json evaluate(const std::string& split) = 0;
  virtual TrainOutput train(const flare_round_info& round) = 0;
};

// What an aggregator carries from round to round (ABI 1.4 get_state): views
// into the aggregator, valid until the next call on it, and a JSON object.
struct AggregatorState {
  std::vector<flare_named_tensor> tensors;
  nlohmann::json meta = nlohmann::json::object();
};

// Base class of a C++ aggregator plugin. Constructed as
//   Derived(const nlohmann::json& config, Host host).
// By default it takes whole updates (accept), each borrowed for the call. A
// plugin that folds updates as they stream in (ABI 1.3, the contract in
// plugin_abi.h) overrides the five streamed-update functions too; the glue
// then fills their table entries, which stay NULL otherwise (the host then
// calls accept). One that needs every update at once (median, Krum) declares
//   static constexpr uint64_t properties = FLARE_AGGREGATOR_KEEPS_UPDATES;
// and may then keep accept's views until finalize; one whose config decides
// declares `uint64_t instance_properties() const` (a KEEPS instance is then
// given whole updates even if it overrides the streamed calls). One with
// state across rounds (ABI 1.4) overrides state() and set_state().
class Aggregator {
 public:
  static constexpr uint64_t properties = 0;

  virtual ~Aggregator() = default;
  virtual void begin_round(int64_t round, std::span<const flare_named_tensor> global_model) = 0;
  virtual void accept(const flare_site_update& update) = 0;
  // Views valid until the next begin_round or destruction.
  virtual std::vector<flare_named_tensor> finalize() = 0;

  // Streamed updates (ABI 1.3). `header` has no tensors.
  virtual void begin_update(uint64_t update_id, const flare_site_update& header);
  virtual void accept_chunk(uint64_t update_id, const flare_update_chunk& chunk);
  virtual void retract_chunk(uint64_t update_id, const flare_update_chunk& chunk);
  virtual void end_update(uint64_t update_id);
  virtual void abort_update(uint64_t update_id) noexcept {}

  // State across rounds (ABI 1.4): what get_state hands the server for its
  // checkpoint, and set_state restores before the first begin_round.
  virtual AggregatorState state();
  virtual void set_state(std::span<const flare_named_tensor> tensors, const nlohmann::json& meta);
};

// Never called: the glue leaves the table entries NULL for a plugin that does
// not override them.
inline void Aggregator::begin_update(uint64_t, const flare_site_update&) {
  throw Error(FLARE_ERROR_UNSUPPORTED, "this aggregator takes whole updates only");
}
inline void Aggregator::accept_chunk(uint64_t, const flare_update_chunk&) {
  throw Error(FLARE_ERROR_UNSUPPORTED, "this aggregator takes whole updates only");
}
inline void Aggregator::retract_chunk(uint64_t, const flare_update_chunk&) {
  throw Error(FLARE_ERROR_UNSUPPORTED, "this aggregator takes whole updates only");
}
inline void Aggregator::end_update(uint64_t) {
  throw Error(FLARE_ERROR_UNSUPPORTED, "this aggregator takes whole updates only");
}
inline AggregatorState Aggregator::state() {
  throw Error(FLARE_ERROR_UNSUPPORTED, "this aggregator has no state across rounds");
}
inline void Aggregator::set_state(std::span<const flare_named_tensor>, const nlohmann::json&) {
  throw Error(FLARE_ERROR_UNSUPPORTED, "this aggregator has no state across rounds");
}

// A DLTensor view over contiguous memory owned by someone else; `shape` must
// outlive it.
inline DLTensor dl_view(void* data, DLDataType dtype, int64_t* shape, int32_t ndim,
                        DLDevice device = {kDLCPU, 0}) {
  DLTensor t{};
  t.data = data;
  t.device = device;
  t.ndim = ndim;
  t.dtype = dtype;
  t.shape = shape;
  t.strides = nullptr;
  t.byte_offset = 0;
  return t;
}

// A flare_named_tensor view over contiguous memory owned by someone else.
inline flare_named_tensor tensor_view(const char* name, void* data, DLDataType dtype,
                                      int64_t* shape, int32_t ndim,
                                      DLDevice device = {kDLCPU, 0}) {
  flare_named_tensor t{};
  t.struct_size = sizeof(flare_named_tensor);
  t.name = name;
  t.tensor = dl_view(data, dtype, shape, ndim, device);
  return t;
}

inline int64_t num_elements(const DLTensor& t) {
  int64_t n = 1;
  for (int32_t i = 0; i < t.ndim; ++i) n *= t.shape[i];
  return n;
}

// Dense, row-major (C order). A dimension of extent 1 may carry any stride, as
// PyTorch's views do.
inline bool is_row_major(const DLTensor& t) {
  if (!t.strides) return true;
  int64_t expected = 1;
  for (int32_t i = t.ndim - 1; i >= 0; --i) {
    if (t.shape[i] != 1 && t.strides[i] != expected) return false;
    expected *= t.shape[i];
  }
  return true;
}

// Bytes of one element (all its lanes), rounded up to whole bytes.
inline size_t element_bytes(DLDataType dtype) {
  return (size_t{dtype.bits} * dtype.lanes + 7) / 8;
}

inline size_t num_bytes(const DLTensor& t) {
  return static_cast<size_t>(num_elements(t)) * element_bytes(t.dtype);
}

// A dtype as messages name it: "float32", "int64", "bfloat16", "float32x4"
// with lanes, "code9_16" for a type code DLPack does not name.
inline std::string describe_dtype(DLDataType dtype) {
  std::string text;
  switch (dtype.code) {
    case kDLInt: text = "int"; break;
    case kDLUInt: text = "uint"; break;
    case kDLFloat: text = "float"; break;
    case kDLBfloat: text = "bfloat"; break;
    case kDLComplex: text = "complex"; break;
    default: text = "code" + std::to_string(dtype.code) + "_"; break;
  }
  text += std::to_string(dtype.bits);
  if (dtype.lanes != 1) text += "x" + std::to_string(dtype.lanes);
  return text;
}

// A shape as messages write it: "[4, 3]", "[]" for a scalar. A DLTensor's is
// describe_shape({t.shape, static_cast<size_t>(t.ndim)}).
inline std::string describe_shape(std::span<const int64_t> shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

namespace detail {

// The current exception as a flare_error (never throws).
inline flare_error* current_error(const flare_host_services* host) noexcept {
  try {
    throw;
  } catch (const Error& e) {
    return host->error_new(e.code(), e.what());
  } catch (const nlohmann::json::exception& e) {
    return host->error_new(FLARE_ERROR_INVALID_ARGUMENT, e.what());
  } catch (const std::exception& e) {
    return host->error_new(FLARE_ERROR_INTERNAL, e.what());
  } catch (...) {
    return host->error_new(FLARE_ERROR_INTERNAL, "unknown exception in plugin");
  }
}

template <class F>
flare_error* guarded(const flare_host_services* host, F&& body) noexcept {
  try {
    body();
    return nullptr;
  } catch (...) {
    return current_error(host);
  }
}

inline nlohmann::json parse_config(const char* config_json) {
  if (!config_json || !*config_json) return nlohmann::json::object();
  return nlohmann::json::parse(config_json);
}

// The config parsed and checked against T::config_schema() when T declares one.
template <class T>
nlohmann::json checked_config(const char* config_json) {
  nlohmann::json config = parse_config(config_json);
  if constexpr (requires { T::config_schema(); }) T::config_schema().check(config);
  return config;
}

}  // namespace detail
}  // namespace flare

// The opaque handles of the C ABI, defined once per plugin.
struct flare_trainer {
  std::unique_ptr<flare::Trainer> impl;
  const flare_host_services* host = nullptr;
  std::vector<flare_named_tensor> weights;  // keeps the last get_weights views
  std::string metrics_json;                 // keeps the last evaluate/train JSON
  std::string meta_json;
  flare::TrainOutput last_train;
};

struct flare_aggregator {
  std::unique_ptr<flare::Aggregator> impl;
  const flare_host_services* host = nullptr;
  std::vector<flare_named_tensor> result;
  flare::AggregatorState state;  // keeps the last get_state views
  std::string state_meta;
};

namespace flare::detail {

template <class T>
struct TrainerGlue {
  static flare_error* create(const char* config_json, const flare_worker_info* worker,
                             const flare_host_services* host, flare_trainer** out) {
    return guarded(host, [&] {
      auto handle = std::make_unique<flare_trainer>();
      handle->host = host;
      handle->impl = std::make_unique<T>(checked_config<T>(config_json), WorkerInfo::from(worker),
                                         Host(host));
      *out = handle.release();
    });
  }
  static void destroy(flare_trainer* t) { delete t; }
  static flare_error* get_weights(flare_trainer* t, const flare_named_tensor** out,
                                  size_t* count) {
    return guarded(t->host, [&] {
      t->weights = t->impl->weights();
      *out = t->weights.data();
      *count = t->weights.size();
    });
  }
  static flare_error* set_weights(flare_trainer* t, const flare_named_tensor* w, size_t count) {
    return guarded(t->host, [&] { t->impl->set_weights({w, count}); });
  }
  static flare_error* evaluate(flare_trainer* t, const char* split, const char** json) {
    return guarded(t->host, [&] {
      t->metrics_json = t->impl->evaluate(split ? split : "").dump();
      *json = t->metrics_json.c_str();
    });
  }
  static flare_error* train(flare_trainer* t, const flare_round_info* round,
                            flare_train_result* out) {
    return guarded(t->host, [&] {
      t->last_train = t->impl->train(*round);
      t->metrics_json = t->last_train.metrics.dump();
      t->meta_json = t->last_train.meta.dump();
      const TrainOutput& r = t->last_train;
      flare_train_result result{};
      result.struct_size = sizeof(result);
      result.weights = r.weights.data();
      result.num_weights = r.weights.size();
      result.aux = r.aux.empty() ? nullptr : r.aux.data();
      result.num_aux = r.aux.size();
      result.num_samples = r.num_samples;
      result.num_steps = r.num_steps;
      result.metrics_json = t->metrics_json.c_str();
      result.meta_json = t->meta_json.c_str();
      const size_t size = out->struct_size < sizeof(result) ? out->struct_size : sizeof(result);
      std::memcpy(static_cast<void*>(out), &result, size);
      out->struct_size = size;
    });
  }
  static flare_error* validate_config(const char* config_json, const flare_worker_info* worker,
                                      const flare_host_services* host) {
    return guarded(host, [&] {
      const nlohmann::json config = checked_config<T>(config_json);
      if constexpr (requires { T::validate_config(config, WorkerInfo{}, Host(host)); })
        T::validate_config(config, WorkerInfo::from(worker), Host(host));
    });
  }
  static const flare_trainer_api_v1* api() {
    static const flare_trainer_api_v1 table{sizeof(flare_trainer_api_v1), &create, &destroy,
                                            &get_weights, &set_weights, &evaluate, &train,
                                            &validate_config};
    return &table;
  }
};

template <class T>
struct AggregatorGlue {
  static flare_error* create(const char* config_json, const flare_host_services* host,
                             flare_aggregator** out) {
    return guarded(host, [&] {
      auto handle = std::make_unique<flare_aggregator>();
      handle->host = host;
      handle->impl = std::make_unique<T>(checked_config<T>(config_json), Host(host));
      *out = handle.release();
    });
  }
  static void destroy(flare_aggregator* a) { delete a; }
  static flare_error* begin_round(flare_aggregator* a, int64_t round,
                                  const flare_named_tensor* model, size_t count) {
    return guarded(a->host, [&] { a->impl->begin_round(round, {model, count}); });
  }
  static flare_error* accept(flare_aggregator* a, const flare_site_update* update) {
    return guarded(a->host, [&] { a->impl->accept(*update); });
  }
  static flare_error* finalize(flare_aggregator* a, const flare_named_tensor** out,
                               size_t* count) {
    return guarded(a->host, [&] {
      a->result = a->impl->finalize();
      *out = a->result.data();
      *count = a->result.size();
    });
  }
  static flare_error* validate_config(const char* config_json, const flare_host_services* host) {
    return guarded(host, [&] {
      const nlohmann::json config = checked_config<T>(config_json);
      if constexpr (requires { T::validate_config(config, Host(host)); })
        T::validate_config(config, Host(host));
    });
  }
  static flare_error* begin_update(flare_aggregator* a, uint64_t id,
                                   const flare_site_update* header) {
    return guarded(a->host, [&] { a->impl->begin_update(id, *header); });
  }
  static flare_error* accept_chunk(flare_aggregator* a, uint64_t id,
                                   const flare_update_chunk* chunk) {
    return guarded(a->host, [&] { a->impl->accept_chunk(id, *chunk); });
  }
  static flare_error* retract_chunk(flare_aggregator* a, uint64_t id,
                                    const flare_update_chunk* chunk) {
    return guarded(a->host, [&] { a->impl->retract_chunk(id, *chunk); });
  }
  static flare_error* end_update(flare_aggregator* a, uint64_t id) {
    return guarded(a->host, [&] { a->impl->end_update(id); });
  }
  static void abort_update(flare_aggregator* a, uint64_t id) { a->impl->abort_update(id); }
  static flare_error* get_state(flare_aggregator* a, const flare_named_tensor** tensors,
                                size_t* count, const char** meta_json) {
    return guarded(a->host, [&] {
      a->state = a->impl->state();
      a->state_meta = a->state.meta.dump();
      *tensors = a->state.tensors.data();
      *count = a->state.tensors.size();
      *meta_json = a->state_meta.c_str();
    });
  }
  static flare_error* set_state(flare_aggregator* a, const flare_named_tensor* tensors,
                                size_t count, const char* meta_json) {
    return guarded(a->host, [&] {
      a->impl->set_state({tensors, count}, parse_config(meta_json));
    });
  }
  static uint64_t instance_properties(flare_aggregator* a) {
    if constexpr (has_instance_properties)
      return static_cast<const T&>(*a->impl).instance_properties();
    else
      return T::properties;  // never in the table (NULL there)
  }

  // T opts in to streamed updates by overriding begin_update: &T::begin_update
  // then names T's (or an intermediate base's) function, not Aggregator's.
  static constexpr bool folds_chunks =
      !std::is_same_v<decltype(&T::begin_update),
                      void (Aggregator::*)(uint64_t, const flare_site_update&)>;
  static_assert(!folds_chunks ||
                    (!std::is_same_v<decltype(&T::accept_chunk),
                                     void (Aggregator::*)(uint64_t, const flare_update_chunk&)> &&
                     !std::is_same_v<decltype(&T::retract_chunk),
                                     void (Aggregator::*)(uint64_t, const flare_update_chunk&)> &&
                     !std::is_same_v<decltype(&T::end_update), void (Aggregator::*)(uint64_t)> &&
                     !std::is_same_v<decltype(&T::abort_update),
                                     void (Aggregator::*)(uint64_t) noexcept>),
                "an aggregator overriding begin_update must override accept_chunk, "
                "retract_chunk, end_update and abort_update too");

  // T has state across rounds by overriding state (and then set_state).
  static constexpr bool has_state =
      !std::is_same_v<decltype(&T::state), AggregatorState (Aggregator::*)()>;
  static_assert(!has_state ||
                    !std::is_same_v<decltype(&T::set_state),
                                    void (Aggregator::*)(std::span<const flare_named_tensor>,
                                                         const nlohmann::json&)>,
                "an aggregator overriding state must override set_state too");
  // T's config picks its properties by declaring
  //   uint64_t instance_properties() const;
  static constexpr bool has_instance_properties = requires(const T& t) {
    { t.instance_properties() } -> std::same_as<uint64_t>;
  };
  static_assert(!(T::properties & FLARE_AGGREGATOR_KEEPS_UPDATES) || !folds_chunks,
                "an aggregator that keeps updates takes them whole (accept), not streamed");

  static const flare_aggregator_api_v1* api() {
    static const flare_aggregator_api_v1 table{sizeof(flare_aggregator_api_v1),
                                               &create,
                                               &destroy,
                                               &begin_round,
                                               &accept,
                                               &finalize,
                                               &validate_config,
                                               folds_chunks ? &begin_update : nullptr,
                                               folds_chunks ? &accept_chunk : nullptr,
                                               folds_chunks ? &retract_chunk : nullptr,
                                               folds_chunks ? &end_update : nullptr,
                                               folds_chunks ? &abort_update : nullptr,
                                               T::properties,
                                               has_state ? &get_state : nullptr,
                                               has_state ? &set_state : nullptr,
                                               has_instance_properties ? &instance_properties
                                                                       : nullptr};
    return &table;
  }
};

}  // namespace flare::detail

// A plugin of the SDK speaks the one major it was compiled with, so its entry
// ignores host_abi_major: the host refuses another major, naming both versions.
#define FLARE_DEFINE_PLUGIN_ENTRY_(kind, api_ptr, name, version, description)               \
  extern "C" FLARE_PLUGIN_EXPORT const flare_plugin_descriptor* flare_plugin_entry(        \
      uint32_t /*host_abi_major*/) {                                                      \
    static const flare_plugin_descriptor descriptor{                                      \
        sizeof(flare_plugin_descriptor), FLARE_ABI_VERSION_MAJOR, FLARE_ABI_VERSION_MINOR, \
        kind, name, version, description, api_ptr};                                      \
    return &descriptor;                                                                   \
  }

// Exports `Class` (derived from flare::Trainer) as this .so's trainer plugin.
#define FLARE_TRAINER_PLUGIN(Class, name, version, description)                              \
  FLARE_DEFINE_PLUGIN_ENTRY_(FLARE_PLUGIN_TRAINER, ::flare::detail::TrainerGlue<Class>::api(), \
                             name, version, description)

// Exports `Class` (derived from flare::Aggregator) as this .so's aggregator plugin.
#define FLARE_AGGREGATOR_PLUGIN(Class, name, version, description) \
  FLARE_DEFINE_PLUGIN_ENTRY_(FLARE_PLUGIN_AGGREGATOR,              \
                             ::flare::detail::AggregatorGlue<Class>::api(), name, version, \
                             description)
