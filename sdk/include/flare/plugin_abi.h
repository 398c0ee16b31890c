/* flare-cpp plugin C ABI, version 1.4.
 *
 * The only contract between the flare runtime (the "host") and a plugin (.so).
 * Plain C11: no C++, STL or LibTorch type crosses it.
 *
 * Rules (see docs/architecture.md):
 *  - A plugin exports exactly one symbol, FLARE_PLUGIN_ENTRY_SYMBOL, of type
 *    flare_plugin_entry_fn. It returns a static descriptor naming the ABI version
 *    the plugin was built for, its kind, and its function table.
 *  - Append-only: within a major, structs and tables only grow at the end, and
 *    each minor that grows one pins its new size (FLARE_*_SIZE_<major>_<minor>,
 *    at the end of this file). Every struct that crosses starts with
 *    `struct_size`; a reader accepts any size at least the struct's first
 *    shipped one (its _1_0 size), so an older writer keeps working, and reads a
 *    field added later only when FLARE_HAS_FIELD says the writer sent it. A
 *    function added later may also be NULL; the caller then falls back.
 *  - Everything the plugin owns is an opaque handle with a destroy function.
 *  - Errors are objects (NULL = success) created through the host's table; the
 *    receiver releases them. Out-parameters are untouched when an error is returned.
 *  - Tensors cross as DLPack DLTensor views; each call says who owns the memory
 *    and for how long it stays valid.
 *  - Configuration crosses as JSON text (the plugin's TOML table, converted).
 *
 * Threading: the host calls a plugin handle from one thread at a time. Host
 * services may be called from any thread of the plugin unless noted.
 */
#ifndef FLARE_PLUGIN_ABI_H
#define FLARE_PLUGIN_ABI_H

#include <stddef.h>
#include <stdint.h>

#include <dlpack/dlpack.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FLARE_ABI_VERSION_MAJOR 1
#define FLARE_ABI_VERSION_MINOR 4

/* The size of `type` up to and including `field`. */
#define FLARE_SIZE_THROUGH(type, field) (offsetof(type, field) + sizeof(((type*)0)->field))

/* True when a struct written by the other side (`ptr->struct_size`) is large
 * enough to hold `field`; read a field only when this holds. */
#define FLARE_HAS_FIELD(ptr, type, field) ((ptr)->struct_size >= FLARE_SIZE_THROUGH(type, field))

/* The one symbol every plugin exports. */
#define FLARE_PLUGIN_ENTRY_SYMBOL "flare_plugin_entry"

#if defined(_WIN32)
#define FLARE_PLUGIN_EXPORT __declspec(dllexport)
#else
#define FLARE_PLUGIN_EXPORT __attribute__((visibility("default")))
#endif

/* ------------------------------------------------------------------ errors */

typedef enum flare_error_code {
  FLARE_ERROR_INVALID_ARGUMENT = 1, /* bad config, bad tensor shape/dtype   */
  FLARE_ERROR_NOT_FOUND = 2,        /* missing file, split or tensor name  */
  FLARE_ERROR_UNSUPPORTED = 3,      /* feature or device not available     */
  FLARE_ERROR_INTERNAL = 4,         /* bug or unexpected exception         */
  FLARE_ERROR_CANCELLED = 5,        /* the host asked to stop              */
  FLARE_ERROR_COMMUNICATION = 6,    /* a collective or transfer failed     */
  FLARE_ERROR_IO = 7                /* reading or writing data failed      */
} flare_error_code;

/* Opaque. Created by flare_host_services.error_new; released by whoever
 * receives it (the host for errors a plugin returns, the plugin for errors a
 * host service returns to it, unless it passes them on by returning them). */
typedef struct flare_error flare_error;

/* ------------------------------------------------------------------ tensors */

/* A named, borrowed view of a tensor. `name` and `tensor.data` are owned by
 * whoever produced the view; the call that hands the view over says how long
 * it stays valid. Tensors are dense; `tensor.strides` may be NULL (row-major).
 * Never grows within a major: it crosses in arrays, which the reader indexes
 * with its own sizeof. */
typedef struct flare_named_tensor {
  size_t struct_size;
  const char* name;
  DLTensor tensor;
} flare_named_tensor;

/* ---------------------------------------------------------- host services */

typedef enum flare_log_level {
  FLARE_LOG_DEBUG = 0,
  FLARE_LOG_INFO = 1,
  FLARE_LOG_WARN = 2,
  FLARE_LOG_ERROR = 3
} flare_log_level;

typedef enum flare_reduce_op {
  FLARE_REDUCE_SUM = 0,
  FLARE_REDUCE_MAX = 1,
  FLARE_REDUCE_MIN = 2
} flare_reduce_op;

/* Opaque (ABI 1.1): an all-reduce in flight, owned by the host. Made by
 * all_reduce_start; wait_work completes and releases it. */
typedef struct flare_work flare_work;

/* What the host offers a plugin. Passed to create(); borrowed, valid until the
 * plugin handle is destroyed. Every function but the error_* ones takes
 * `context` first (pass flare_host_services.context); an error stands alone,
 * so whoever ends up holding one can read and release it without the table's
 * context. Strings passed in are borrowed for the call. */
typedef struct flare_host_services {
  size_t struct_size;
  void* context;

  /* Errors. error_new copies `message`; the returned object is owned by the
   * caller until returned to the host or released. Thread-safe. */
  flare_error* (*error_new)(flare_error_code code, const char* message);
  flare_error_code (*error_code)(const flare_error* error);
  /* Borrowed; valid until the error is released. */
  const char* (*error_message)(const flare_error* error);
  void (*error_release)(flare_error* error);

  /* Logging into the process's log, tagged with site and rank. Thread-safe. */
  void (*log)(void* context, flare_log_level level, const char* message);
  /* A scalar metric of this site (e.g. "train_loss") at a step; the host
   * forwards rank 0's metrics to the server's tracking. */
  void (*report_metric)(void* context, const char* name, double value, int64_t step);
  /* Progress of a phase ("train", "validate", "test"): step of total_steps
   * (total_steps <= 0 when unknown) in the given local epoch. */
  void (*report_progress)(void* context, const char* phase, int64_t epoch, int64_t step,
                          int64_t total_steps);
  /* Non-zero when the host wants the current call to stop early; the plugin
   * should then return FLARE_ERROR_CANCELLED at the next convenient point. */
  int (*is_cancelled)(void* context);

  /* The worker group's collectives. Every rank of the group must make the same
   * calls in the same order (like c10d). Tensors are dense, on the worker's
   * device, borrowed for the call and modified in place. On a group of one
   * rank they return at once. Not thread-safe: call from one thread. */
  flare_error* (*all_reduce)(void* context, DLTensor* tensor, flare_reduce_op op);
  flare_error* (*broadcast)(void* context, DLTensor* tensor, int32_t root_rank);
  flare_error* (*barrier)(void* context);

  /* ---- ABI 1.1. A 1.0 host lacks these: check
   * FLARE_HAS_FIELD(host, flare_host_services, wait_work) and fall back to
   * the blocking all_reduce. */

  /* Starts an in-place all-reduce and returns without waiting for it, so a
   * plugin can reduce gradient buckets while backward still runs. On success
   * *out is a work the caller owns and must pass to wait_work exactly once.
   * The DLTensor struct and its shape are borrowed for this call only; the
   * memory at tensor->data must stay alive and untouched (neither read nor
   * written) until wait_work returns. Works complete in the order started;
   * every rank starts the same reductions in the same order, interleaved with
   * the other collectives as on every rank. Same thread rule as all_reduce. */
  flare_error* (*all_reduce_start)(void* context, DLTensor* tensor, flare_reduce_op op,
                                   flare_work** out);
  /* Blocks until `work` has completed, then releases it, also when it failed
   * (the error says why; the tensor's contents are then unspecified). */
  flare_error* (*wait_work)(void* context, flare_work* work);

  /* ---- ABI 1.4. A 1.0-1.3 host lacks it: check
   * FLARE_HAS_FIELD(host, flare_host_services, release_pages). */

  /* A hint from an aggregator that keeps updates
   * (FLARE_AGGREGATOR_KEEPS_UPDATES): it has read [data, data + bytes) of a
   * kept update's tensor and will not need it again soon, so the host may
   * drop those pages from the process's resident memory. They stay valid: a
   * later read brings them back from the spill file. Ranges the host did not
   * hand out are ignored. Thread-safe. */
  void (*release_pages)(void* context, const void* data, size_t bytes);
} flare_host_services;

/* Where a trainer instance runs. Borrowed by create(); copy what you keep. */
typedef struct flare_worker_info {
  size_t struct_size;
  const char* site_name;    /* e.g. "site-1"                                  */
  int32_t site_index;       /* 0-based index of this site among all sites     */
  int32_t num_sites;        /* number of sites in the job                     */
  int32_t rank;             /* global rank in the site's worker group         */
  int32_t world_size;       /* ranks in the site's worker group               */
  int32_t local_rank;       /* rank on this host                              */
  int32_t local_world_size; /* ranks on this host                             */
  DLDevice device;          /* kDLCPU, or kDLCUDA with the device id          */
  int32_t num_threads;      /* intra-op threads this rank should use          */
  uint64_t seed;            /* job seed: same on every rank and site          */
  const char* data_dir;     /* the job's data location                        */
  const char* work_dir;     /* a folder this rank may write (its own)         */

  /* ---- ABI 1.4. A 1.0-1.3 host lacks it: check
   * FLARE_HAS_FIELD(worker, flare_worker_info, data_json). */

  /* The job's [data] table as a JSON object, e.g. {"dir": "/data",
   * "split": "dirichlet", "alpha": 0.5}: how the job splits the training
   * data across its sites (flare/data_split.hpp). NULL or "{}" when absent. */
  const char* data_json;
} flare_worker_info;

/* ------------------------------------------------------------------ trainer */

typedef struct flare_trainer flare_trainer; /* opaque, owned by the plugin */

typedef struct flare_round_info {
  size_t struct_size;
  int64_t round;      /* 0-based federated round */
  int64_t num_rounds; /* rounds in the job       */
} flare_round_info;

/* What train() hands back. The caller zero-fills it and sets struct_size; the
 * plugin fills the fields that fit. Every pointer is owned by the plugin and
 * valid until the next call on the same trainer handle or its destroy. */
typedef struct flare_train_result {
  size_t struct_size;
  const flare_named_tensor* weights; /* the model after local training      */
  size_t num_weights;
  const flare_named_tensor* aux;     /* extra named tensors (e.g. control   */
  size_t num_aux;                    /* variates); may be NULL / 0          */
  double num_samples;                /* local work: samples seen, all ranks */
  int64_t num_steps;                 /* optimizer steps per rank            */
  const char* metrics_json;          /* {"train_loss": ...}; may be NULL    */
  const char* meta_json;             /* free-form JSON object; may be NULL  */
} flare_train_result;

/* A trainer runs on every rank of a worker group. The host calls the same
 * functions in the same order on every rank; the plugin's collectives go
 * through flare_host_services. */
typedef struct flare_trainer_api_v1 {
  size_t struct_size;
  /* Builds a trainer from its JSON config. `config_json`, `worker` and `host`
   * are borrowed: the first two for the call, `host` until destroy. Should be
   * cheap enough to run before any data is needed; *out is owned by the caller
   * and released with destroy. */
  flare_error* (*create)(const char* config_json, const flare_worker_info* worker,
                         const flare_host_services* host, flare_trainer** out);
  void (*destroy)(flare_trainer* trainer);
  /* The current model. *out / *count: plugin-owned views, valid until the next
   * call on this trainer or destroy. Same names, order, dtypes and shapes on
   * every rank and every call. */
  flare_error* (*get_weights)(flare_trainer* trainer, const flare_named_tensor** out,
                              size_t* count);
  /* Replaces the model with `weights` (copied; borrowed for the call). Names
   * must match get_weights; optimizer state is kept. */
  flare_error* (*set_weights)(flare_trainer* trainer, const flare_named_tensor* weights,
                              size_t count);
  /* Evaluates the current model on a split ("validation" or "test"), sharded
   * across ranks and reduced: every rank receives the same JSON, e.g.
   * {"loss": 1.2, "accuracy": 0.61, "num_samples": 2000}. Collective.
   * *metrics_json: plugin-owned, valid until the next call or destroy. */
  flare_error* (*evaluate)(flare_trainer* trainer, const char* split,
                           const char** metrics_json);
  /* Trains locally for the round (e.g. one epoch) from the current weights.
   * Collective. `round` borrowed for the call; see flare_train_result. */
  flare_error* (*train)(flare_trainer* trainer, const flare_round_info* round,
                        flare_train_result* out);

  /* ---- ABI 1.2. A 1.1 plugin's table ends before this: the host reads it
   * only under FLARE_HAS_FIELD(api, flare_trainer_api_v1, validate_config),
   * and when it is absent or NULL, create() is the first to see the config. */

  /* Checks a config, and the data it would train on, without creating a
   * trainer: no model, no full read of the data (sizes, not contents). Refuses
   * what create() would refuse: a bad option with FLARE_ERROR_INVALID_ARGUMENT
   * (the message names the option), data missing, empty or truncated at
   * worker->data_dir with FLARE_ERROR_NOT_FOUND or FLARE_ERROR_IO. The host
   * calls it before any process of the job starts, with `worker` describing
   * rank 0 of the first site (work_dir NULL: no run folder exists yet). Every
   * argument is borrowed for the call; `host` offers errors and logging (its
   * collectives are a group of one rank). May be called from any thread, any
   * number of times, without create. */
  flare_error* (*validate_config)(const char* config_json, const flare_worker_info* worker,
                                  const flare_host_services* host);
} flare_trainer_api_v1;

/* --------------------------------------------------------------- aggregator */

typedef struct flare_aggregator flare_aggregator; /* opaque, owned by the plugin */

/* One site's result, borrowed by accept() for the call only. */
typedef struct flare_site_update {
  size_t struct_size;
  const char* site;
  int64_t round;
  const flare_named_tensor* weights;
  size_t num_weights;
  const flare_named_tensor* aux;
  size_t num_aux;
  double num_samples;
  int64_t num_steps;
  const char* metrics_json; /* may be NULL */
  const char* meta_json;    /* may be NULL */
} flare_site_update;

/* ABI 1.3: one piece of one tensor of a site's update, borrowed for the call. */
typedef enum flare_update_part { FLARE_UPDATE_WEIGHTS = 0, FLARE_UPDATE_AUX = 1 } flare_update_part;
typedef struct flare_update_chunk {
  size_t struct_size;
  int32_t part;                     /* flare_update_part */
  size_t tensor_index;              /* weights: its index in begin_round's global model; aux: in arrival order */
  const flare_named_tensor* tensor; /* the whole tensor: name, dtype, shape; tensor.data is NULL */
  uint64_t element_offset;          /* first element of this piece, row-major */
  uint64_t num_elements;
  const void* data;                 /* num_elements elements of tensor's dtype, dense */
} flare_update_chunk;

/* An aggregator runs on the server, one thread at a time. */
typedef struct flare_aggregator_api_v1 {
  size_t struct_size;
  /* `config_json` borrowed for the call, `host` until destroy; *out owned by
   * the caller and released with destroy. */
  flare_error* (*create)(const char* config_json, const flare_host_services* host,
                         flare_aggregator** out);
  void (*destroy)(flare_aggregator* aggregator);
  /* Starts a round from the current global model (borrowed for the call; a
   * 1.4 host, FLARE_HAS_FIELD(host, flare_host_services, release_pages),
   * keeps it valid and unchanged until finalize returns or the next
   * begin_round, so an aggregator that steps from it may keep the views). */
  flare_error* (*begin_round)(flare_aggregator* aggregator, int64_t round,
                              const flare_named_tensor* global_model, size_t count);
  /* Folds one site's update in now (borrowed for the call: copy what is kept).
   * A 1.4 host (FLARE_HAS_FIELD(host, flare_host_services, release_pages))
   * has checked the update as it checks streamed chunks (below): each weights
   * tensor has the global model's name, dtype and shape, each once, and every
   * value of every tensor is finite; an older host promises nothing. */
  flare_error* (*accept)(flare_aggregator* aggregator, const flare_site_update* update);
  /* The next global model. *out / *count: plugin-owned views, valid until the
   * next begin_round or destroy. Fails when no update was accepted. A 1.3
   * host ends or aborts every streamed update before it (none is in flight). */
  flare_error* (*finalize)(flare_aggregator* aggregator, const flare_named_tensor** out,
                           size_t* count);

  /* ---- ABI 1.2, read as the trainer's validate_config is. */

  /* Checks a config without creating an aggregator: the refusal create()
   * would give, FLARE_ERROR_INVALID_ARGUMENT naming the option. Called before
   * any process of the job starts; `config_json` and `host` borrowed for the
   * call. May be called from any thread, any number of times, without create. */
  flare_error* (*validate_config)(const char* config_json, const flare_host_services* host);

  /* ---- ABI 1.3: folding updates as they stream in. An aggregator declares
   * that it folds this way by a non-NULL begin_update, and then all five are
   * non-NULL; otherwise (NULL, or a 1.0-1.2 table: check
   * FLARE_HAS_FIELD(api, flare_aggregator_api_v1, abort_update)) the host
   * gives it whole updates through accept().
   *
   * Several updates may be in flight at once: their calls interleave (still
   * one thread at a time), each naming its update by an id unique within the
   * round. Before accept_chunk the host has checked the chunk: a weights
   * tensor has the global model's name, dtype and shape at tensor_index; its
   * values are finite; the pieces of a tensor arrive in order and contiguous;
   * every weights tensor is covered exactly once before end_update. Only
   * end_update counts the update in the round.
   *
   * A rejected update (found bad after some chunks were accepted, or its site
   * lost mid-stream) is undone by the host: it passes every accepted chunk
   * again to retract_chunk (same data, any order), then calls abort_update.
   * The aggregator then holds what it held before begin_update, up to float
   * rounding. */

  /* Opens update `update_id`. `update` is its header only, borrowed for the
   * call: site, round, num_samples, num_steps, metrics_json, meta_json (weights
   * and aux NULL, their counts 0). May refuse, with FLARE_ERROR_INVALID_ARGUMENT
   * (e.g. a weight <= 0, the wrong round); the host then sends nothing more of it. */
  flare_error* (*begin_update)(flare_aggregator* aggregator, uint64_t update_id,
                               const flare_site_update* update);
  /* Folds one checked chunk in (borrowed for the call: copy what is kept). */
  flare_error* (*accept_chunk)(flare_aggregator* aggregator, uint64_t update_id,
                               const flare_update_chunk* chunk);
  /* Takes back what accept_chunk folded in for this same chunk. */
  flare_error* (*retract_chunk)(flare_aggregator* aggregator, uint64_t update_id,
                                const flare_update_chunk* chunk);
  /* The update is complete: count it. */
  flare_error* (*end_update)(flare_aggregator* aggregator, uint64_t update_id);
  /* Forgets the update, after its chunks were retracted. Cannot fail. */
  void (*abort_update)(flare_aggregator* aggregator, uint64_t update_id);

  /* ---- ABI 1.4. A 1.0-1.3 table ends before this: check
   * FLARE_HAS_FIELD(api, flare_aggregator_api_v1, set_state); absent means
   * properties 0 and no state. */

  /* FLARE_AGGREGATOR_* bits (below): how the aggregator takes updates. */
  uint64_t properties;

  /* State carried from round to round (server momentum, Adam moments, a
   * privacy accountant, control variates), which the server keeps in its
   * checkpoint so that a resumed run goes on as if never stopped. Both NULL
   * (no state) or both set.
   *
   * get_state: the state as of now (after the last finalize, or as created
   * or set). *tensors / *count / *meta_json (a JSON object, or NULL): plugin
   * owned, valid until the next call on this handle. Tensors are dense, on
   * the CPU, with names unique among them.
   * set_state: called after create and before the first begin_round with
   * what get_state gave (possibly in another process); borrowed for the
   * call. Refuses a state that does not fit its config with
   * FLARE_ERROR_INVALID_ARGUMENT, naming what differs. */
  flare_error* (*get_state)(flare_aggregator* aggregator, const flare_named_tensor** tensors,
                            size_t* count, const char** meta_json);
  flare_error* (*set_state)(flare_aggregator* aggregator, const flare_named_tensor* tensors,
                            size_t count, const char* meta_json);

  /* The properties of this instance as its config chose them (fedavg's
   * "fold": "at_finalize" keeps updates, its default folds them streamed);
   * read once after create. NULL: `properties`. An instance keeping updates
   * is given whole updates through accept even when the table has
   * begin_update. */
  uint64_t (*instance_properties)(flare_aggregator* aggregator);
} flare_aggregator_api_v1;

/* flare_aggregator_api_v1.properties (ABI 1.4). */
/* The aggregator needs every update of a round at once (coordinate-wise
 * median, Krum) and cannot fold them as they arrive. The host then gives it
 * whole updates through accept() (never the streamed calls), and each
 * accepted update's tensors stay valid and unchanged until finalize returns
 * or the next begin_round, not only for the call: the aggregator keeps the
 * views, not copies. The host keeps them outside its resident memory
 * (memory-mapped spill files in the run's folder, gone when the round ends)
 * and the aggregator hands back what it has read with release_pages, so a
 * round of many sites needs memory for the model, not for the sites. A
 * rejected update (refused by accept) is not kept. */
#define FLARE_AGGREGATOR_KEEPS_UPDATES ((uint64_t)1)

/* An aggregator's own figures for a round (e.g. "dp_epsilon", "selected")
 * go through host->report_metric with step = the round (0-based); the server
 * writes them to the run's metrics and prints them in the round's summary. */

/* ------------------------------------------------------------------ entry */

typedef enum flare_plugin_kind {
  FLARE_PLUGIN_TRAINER = 1,
  FLARE_PLUGIN_AGGREGATOR = 2
} flare_plugin_kind;

/* Static for the plugin's lifetime; all strings static. `struct_size`,
 * `abi_major` and `abi_minor` keep their place in every major, so any host can
 * read the version of any plugin and refuse a mismatch by name. */
typedef struct flare_plugin_descriptor {
  size_t struct_size;
  uint32_t abi_major; /* FLARE_ABI_VERSION_MAJOR the plugin was built with */
  uint32_t abi_minor;
  flare_plugin_kind kind;
  const char* name;
  const char* version;
  const char* description;
  /* flare_trainer_api_v1* or flare_aggregator_api_v1*, by kind. */
  const void* api;
} flare_plugin_descriptor;

/* The exported entry. Never returns NULL. `host_abi_major` is the major the
 * host speaks: it lets a plugin built for several majors (one descriptor and
 * table each) return the one this host can run. A plugin of one major, such
 * as every plugin of the C++ SDK, returns its own descriptor regardless; the
 * host then refuses a mismatch and prints both versions. */
typedef const flare_plugin_descriptor* (*flare_plugin_entry_fn)(uint32_t host_abi_major);

/* ------------------------------------------------------ sizes as shipped */

/* Each struct's size in every minor that grew it, measured to its last field
 * of that minor: an older writer declares at least this much, on any data
 * model (tests/sdk/test_abi_layout.cpp pins the LP64 values, in the comments).
 * The _1_0 size is the least a reader accepts. A minor that appends to a
 * struct adds one line here; a struct without a _1_<minor> line did not
 * change in that minor. A struct new in a later minor (flare_update_chunk,
 * 1.3) has that minor's size as its least. */
#define FLARE_NAMED_TENSOR_SIZE_1_0 FLARE_SIZE_THROUGH(flare_named_tensor, tensor) /* 64 */
#define FLARE_HOST_SERVICES_SIZE_1_0 FLARE_SIZE_THROUGH(flare_host_services, barrier) /* 104 */
#define FLARE_HOST_SERVICES_SIZE_1_1 FLARE_SIZE_THROUGH(flare_host_services, wait_work) /* 120 */
#define FLARE_HOST_SERVICES_SIZE_1_4 \
  FLARE_SIZE_THROUGH(flare_host_services, release_pages) /* 128 */
#define FLARE_WORKER_INFO_SIZE_1_0 FLARE_SIZE_THROUGH(flare_worker_info, work_dir) /* 80 */
#define FLARE_WORKER_INFO_SIZE_1_4 FLARE_SIZE_THROUGH(flare_worker_info, data_json) /* 88 */
#define FLARE_ROUND_INFO_SIZE_1_0 FLARE_SIZE_THROUGH(flare_round_info, num_rounds) /* 24 */
#define FLARE_TRAIN_RESULT_SIZE_1_0 FLARE_SIZE_THROUGH(flare_train_result, meta_json) /* 72 */
#define FLARE_TRAINER_API_SIZE_1_0 FLARE_SIZE_THROUGH(flare_trainer_api_v1, train) /* 56 */
#define FLARE_TRAINER_API_SIZE_1_2 FLARE_SIZE_THROUGH(flare_trainer_api_v1, validate_config) /* 64 */
#define FLARE_SITE_UPDATE_SIZE_1_0 FLARE_SIZE_THROUGH(flare_site_update, meta_json) /* 88 */
#define FLARE_AGGREGATOR_API_SIZE_1_0 FLARE_SIZE_THROUGH(flare_aggregator_api_v1, finalize) /* 48 */
#define FLARE_AGGREGATOR_API_SIZE_1_2 \
  FLARE_SIZE_THROUGH(flare_aggregator_api_v1, validate_config) /* 56 */
#define FLARE_AGGREGATOR_API_SIZE_1_3 \
  FLARE_SIZE_THROUGH(flare_aggregator_api_v1, abort_update) /* 96 */
#define FLARE_AGGREGATOR_API_SIZE_1_4 \
  FLARE_SIZE_THROUGH(flare_aggregator_api_v1, instance_properties) /* 128 */
#define FLARE_UPDATE_CHUNK_SIZE_1_3 FLARE_SIZE_THROUGH(flare_update_chunk, data) /* 56 */
#define FLARE_PLUGIN_DESCRIPTOR_SIZE_1_0 FLARE_SIZE_THROUGH(flare_plugin_descriptor, api) /* 56 */

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* FLARE_PLUGIN_ABI_H */
