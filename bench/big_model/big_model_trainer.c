/* A trainer whose model is big and whose training is nearly free, for
 * measuring what the runtime costs around a model (transfer, aggregation,
 * memory): "params" float32 parameters in "tensors" 1-D tensors (the first
 * params % tensors of them one element longer), initialised from "seed".
 * train() adds lr * a pattern that depends on the site, the round and the
 * position, so every site sends a different update every round; evaluate()
 * reads a few values. Plain C, no LibTorch, so the worker's own memory is the
 * model plus the runtime. Config: {"params": N, "tensors": K, "seed": S,
 * "lr": X}; defaults 1000000, 20, the job seed, 0.001. */
#include <flare/plugin_abi.h>

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 2^36 float32 values = 256 GiB: far beyond any machine this runs on; a
 * larger count is a typo. */
#define MAX_PARAMS (1LL << 36)
#define MAX_TENSORS 100000LL

typedef struct model_config {
  long long params;
  long long tensors;
  unsigned long long seed;
  double lr;
} model_config;

struct flare_trainer {
  const flare_host_services* host;
  model_config config;
  int32_t site_index;
  float* values; /* all tensors, back to back */
  int64_t* shapes;
  char (*names)[32];
  flare_named_tensor* views;
  char json[256];
};

/* The value of `key` in a flat JSON object of numbers, or `fallback` when
 * absent. Returns 0 on success, -1 (message in `error`) when the value is not
 * a number. The config crosses as JSON text made by the host from TOML. */
static int config_number(const char* json, const char* key, double fallback, double* out,
                         char* error, size_t error_size) {
  char quoted[64];
  snprintf(quoted, sizeof(quoted), "\"%s\"", key);
  const char* at = json ? strstr(json, quoted) : NULL;
  *out = fallback;
  if (!at) return 0;
  at = strchr(at + strlen(quoted), ':');
  if (!at) return snprintf(error, error_size, "trainer.config.%s: no value", key), -1;
  char* end = NULL;
  errno = 0;
  *out = strtod(at + 1, &end);
  while (end && isspace((unsigned char)*end)) ++end;
  if (errno || end == at + 1 || !end || (*end != ',' && *end != '}'))
    return snprintf(error, error_size, "trainer.config.%s: expected a number", key), -1;
  return 0;
}

static int read_integer(const char* json, const char* key, double fallback, long long low,
                        long long high, long long* out, char* error, size_t error_size) {
  double value;
  if (config_number(json, key, fallback, &value, error, error_size)) return -1;
  if (value != (double)(long long)value || value < (double)low || value > (double)high)
    return snprintf(error, error_size, "trainer.config.%s: expected an integer from %lld to %lld, got %g",
                    key, low, high, value), -1;
  *out = (long long)value;
  return 0;
}

static flare_error* read_config(const char* json, const flare_worker_info* worker,
                                const flare_host_services* host, model_config* out) {
  char error[256];
  long long seed;
  if (read_integer(json, "params", 1000000, 1, MAX_PARAMS, &out->params, error, sizeof(error)) ||
      read_integer(json, "tensors", 20, 1, MAX_TENSORS, &out->tensors, error, sizeof(error)) ||
      read_integer(json, "seed", (double)(worker->seed & 0xffffffffULL), 0, 0xffffffffLL, &seed,
                   error, sizeof(error)) ||
      config_number(json, "lr", 0.001, &out->lr, error, sizeof(error)))
    return host->error_new(FLARE_ERROR_INVALID_ARGUMENT, error);
  if (out->tensors > out->params) {
    snprintf(error, sizeof(error),
             "trainer.config.tensors: %lld tensors need at least as many params, got %lld",
             out->tensors, out->params);
    return host->error_new(FLARE_ERROR_INVALID_ARGUMENT, error);
  }
  if (!(out->lr >= 0 && out->lr <= 1))
    return host->error_new(FLARE_ERROR_INVALID_ARGUMENT,
                           "trainer.config.lr: expected a number from 0 to 1");
  out->seed = (unsigned long long)seed;
  return NULL;
}

static flare_error* validate_config(const char* config_json, const flare_worker_info* worker,
                                    const flare_host_services* host) {
  model_config config;
  return read_config(config_json, worker, host, &config);
}

static void destroy(flare_trainer* t) {
  if (!t) return;
  free(t->values);
  free(t->shapes);
  free(t->names);
  free(t->views);
  free(t);
}

static flare_error* create(const char* config_json, const flare_worker_info* worker,
                           const flare_host_services* host, flare_trainer** out) {
  model_config config;
  flare_error* err = read_config(config_json, worker, host, &config);
  if (err) return err;
  flare_trainer* t = calloc(1, sizeof(flare_trainer));
  if (!t) return host->error_new(FLARE_ERROR_INTERNAL, "out of memory");
  t->host = host;
  t->config = config;
  t->site_index = worker->site_index;
  t->values = malloc((size_t)config.params * sizeof(float));
  t->shapes = calloc((size_t)config.tensors, sizeof(int64_t));
  t->names = calloc((size_t)config.tensors, sizeof(*t->names));
  t->views = calloc((size_t)config.tensors, sizeof(flare_named_tensor));
  if (!t->values || !t->shapes || !t->names || !t->views) {
    destroy(t);
    return host->error_new(FLARE_ERROR_INTERNAL, "out of memory for the model");
  }
  /* Small values from a xorshift stream: the same model on every site. */
  unsigned long long state = config.seed * 0x9E3779B97F4A7C15ULL + 1;
  for (long long i = 0; i < config.params; ++i) {
    state ^= state << 13, state ^= state >> 7, state ^= state << 17;
    t->values[i] = (float)((int)(state >> 40) % 2001 - 1000) * 1e-4f;
  }
  float* data = t->values;
  for (long long k = 0; k < config.tensors; ++k) {
    t->shapes[k] = config.params / config.tensors + (k < config.params % config.tensors);
    snprintf(t->names[k], sizeof(t->names[k]), "layer%lld.weight", k);
    flare_named_tensor* v = &t->views[k];
    v->struct_size = sizeof(flare_named_tensor);
    v->name = t->names[k];
    v->tensor.data = data;
    v->tensor.device.device_type = kDLCPU;
    v->tensor.ndim = 1;
    v->tensor.dtype.code = kDLFloat;
    v->tensor.dtype.bits = 32;
    v->tensor.dtype.lanes = 1;
    v->tensor.shape = &t->shapes[k];
    data += t->shapes[k];
  }
  *out = t;
  return NULL;
}

static flare_error* get_weights(flare_trainer* t, const flare_named_tensor** out, size_t* count) {
  *out = t->views;
  *count = (size_t)t->config.tensors;
  return NULL;
}

static flare_error* set_weights(flare_trainer* t, const flare_named_tensor* w, size_t count) {
  if (count != (size_t)t->config.tensors)
    return t->host->error_new(FLARE_ERROR_INVALID_ARGUMENT, "set_weights: wrong tensor count");
  for (size_t k = 0; k < count; ++k) {
    const DLTensor* in = &w[k].tensor;
    if (strcmp(w[k].name, t->names[k]) != 0 || in->ndim != 1 || in->shape[0] != t->shapes[k] ||
        in->dtype.code != kDLFloat || in->dtype.bits != 32)
      return t->host->error_new(FLARE_ERROR_INVALID_ARGUMENT,
                                "set_weights: a tensor differs from get_weights'");
    memcpy(t->views[k].tensor.data, in->data, (size_t)t->shapes[k] * sizeof(float));
  }
  return NULL;
}

static flare_error* evaluate(flare_trainer* t, const char* split, const char** json) {
  /* Mean of the first few values: cheap, and moves with training. */
  double sum = 0;
  const long long n = t->config.params < 1024 ? t->config.params : 1024;
  for (long long i = 0; i < n; ++i) sum += t->values[i];
  const double mean = sum / (double)n;
  snprintf(t->json, sizeof(t->json), "{\"accuracy\": %.6f, \"loss\": %.6f, \"num_samples\": %d}",
           1.0 / (1.0 + (mean < 0 ? -mean : mean)), mean < 0 ? -mean : mean,
           strcmp(split, "test") == 0 ? 200 : 100);
  *json = t->json;
  return NULL;
}

static flare_error* train(flare_trainer* t, const flare_round_info* round,
                          flare_train_result* out) {
  /* A per-site, per-round pattern of 17 steps in [-1, 1]: one cheap pass. */
  const float lr = (float)t->config.lr;
  const long long offset = t->site_index * 7LL + round->round * 13LL;
  float steps[17];
  for (int s = 0; s < 17; ++s) steps[s] = lr * (float)(s - 8) / 8.0f;
  for (long long i = 0, s = offset % 17; i < t->config.params; ++i, s = s == 16 ? 0 : s + 1)
    t->values[i] += steps[s];
  t->host->report_progress(t->host->context, "train", 0, 1, 1);
  snprintf(t->json, sizeof(t->json), "{\"train_loss\": %.6f}", (double)t->values[0]);
  flare_train_result r;
  memset(&r, 0, sizeof(r));
  r.struct_size = sizeof(r);
  r.weights = t->views;
  r.num_weights = (size_t)t->config.tensors;
  r.num_samples = 1000.0;
  r.num_steps = 1;
  r.metrics_json = t->json;
  const size_t size = out->struct_size < sizeof(r) ? out->struct_size : sizeof(r);
  memcpy(out, &r, size);
  out->struct_size = size;
  return NULL;
}

static const flare_trainer_api_v1 kApi = {sizeof(flare_trainer_api_v1), create, destroy,
                                          get_weights, set_weights, evaluate, train,
                                          validate_config};

FLARE_PLUGIN_EXPORT const flare_plugin_descriptor* flare_plugin_entry(uint32_t host_abi_major) {
  static const flare_plugin_descriptor d = {sizeof(flare_plugin_descriptor),
                                            FLARE_ABI_VERSION_MAJOR,
                                            FLARE_ABI_VERSION_MINOR,
                                            FLARE_PLUGIN_TRAINER,
                                            "big_model",
                                            "1.0",
                                            "a big model with a nearly free training step, for "
                                            "benchmarks",
                                            &kApi};
  (void)host_abi_major;
  return &d;
}
