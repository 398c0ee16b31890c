/* A trainer in plain C11 on the ABI alone (no C++, no LibTorch): linear
 * regression y = w.x + b on points each site generates from the job seed and
 * its index, around one true line shared by all sites. Each round it takes
 * `steps` full-batch gradient steps; the ranks of a site split the points and
 * average their gradients with the host's all_reduce (DDP by hand).
 *
 * Config: {"lr": > 0 (0.1), "steps": >= 1 (20), "points_per_site": >= 1 (200)}.
 * The parsing below is deliberately small; a real plugin would use a JSON
 * library (the config is the job's [trainer.config] table as JSON text). */
#include <flare/plugin_abi.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { dims = 4, num_params = dims + 1 }; /* w[0..3] and b, as one tensor "w" */

struct flare_trainer {
  const flare_host_services* host;
  flare_worker_info worker;        /* copied: create() only borrows it */
  double lr;
  long steps;
  long points;
  int64_t steps_done;              /* optimizer steps since the job started */
  float params[num_params];        /* the model get_weights hands out */
  int64_t shape[1];
  flare_named_tensor view;         /* valid as long as the trainer (the ABI asks less) */
  float* x;                        /* points * dims, this site's data */
  float* y;
  char json[256];                  /* the last evaluate/train JSON, valid until the next call */
};

/* The number after "key": in `json`, or `fallback` when the key is absent.
 * *ok is cleared when the value is not a number. */
static double config_number(const char* json, const char* key, double fallback, int* ok) {
  char quoted[64];
  snprintf(quoted, sizeof quoted, "\"%s\"", key);
  const char* at = json ? strstr(json, quoted) : NULL;
  if (!at) return fallback;
  at = strchr(at + strlen(quoted), ':');
  char* end = NULL;
  const double value = at ? strtod(at + 1, &end) : 0;
  if (!at || end == at + 1) *ok = 0;
  return value;
}

/* The config's options, or an error naming the first bad one. */
static flare_error* read_config(const char* json, const flare_host_services* host, double* lr,
                                long* steps, long* points) {
  int ok = 1;
  *lr = config_number(json, "lr", 0.1, &ok);
  if (!ok || !(*lr > 0) || !isfinite(*lr))
    return host->error_new(FLARE_ERROR_INVALID_ARGUMENT, "c_linear: option 'lr' must be a number > 0");
  const double s = config_number(json, "steps", 20, &ok);
  if (!ok || s < 1 || s > 1e6 || s != floor(s))
    return host->error_new(FLARE_ERROR_INVALID_ARGUMENT, "c_linear: option 'steps' must be an integer from 1 to 1000000");
  const double p = config_number(json, "points_per_site", 200, &ok);
  if (!ok || p < 1 || p > 1e7 || p != floor(p))
    return host->error_new(FLARE_ERROR_INVALID_ARGUMENT, "c_linear: option 'points_per_site' must be an integer from 1 to 10000000");
  *steps = (long)s;
  *points = (long)p;
  return NULL;
}

/* A small deterministic generator (splitmix64): the same numbers for the same seed. */
static uint64_t next_random(uint64_t* state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
static double uniform(uint64_t* state) { return (double)(next_random(state) >> 11) / 9007199254740992.0 * 2 - 1; }

/* The true line from the job seed (every site), the points from the seed and
 * the site (`salt` tells validation from training points). */
static void make_points(const flare_worker_info* worker, uint64_t salt, long n, float* x, float* y) {
  uint64_t line_state = worker->seed, state = worker->seed * 7919 + (uint64_t)worker->site_index * 104729 + salt;
  double truth[num_params];
  for (int j = 0; j < num_params; ++j) truth[j] = 2 * uniform(&line_state);
  for (long i = 0; i < n; ++i) {
    double target = truth[dims];
    for (int j = 0; j < dims; ++j) {
      x[i * dims + j] = (float)uniform(&state);
      target += truth[j] * x[i * dims + j];
    }
    y[i] = (float)(target + 0.1 * uniform(&state));
  }
}

static double predict(const flare_trainer* t, const float* x) {
  double p = t->params[dims];
  for (int j = 0; j < dims; ++j) p += t->params[j] * x[j];
  return p;
}

static flare_error* validate_config(const char* config_json, const flare_worker_info* worker,
                                    const flare_host_services* host) {
  double lr;
  long steps, points;
  (void)worker; /* no data files to check: the points are generated */
  return read_config(config_json, host, &lr, &steps, &points);
}

static flare_error* create(const char* config_json, const flare_worker_info* worker,
                           const flare_host_services* host, flare_trainer** out) {
  flare_trainer* t = calloc(1, sizeof *t);
  if (!t) return host->error_new(FLARE_ERROR_INTERNAL, "c_linear: out of memory");
  flare_error* error = read_config(config_json, host, &t->lr, &t->steps, &t->points);
  if (!error) {
    t->x = malloc(sizeof(float) * (size_t)(t->points * dims));
    t->y = malloc(sizeof(float) * (size_t)t->points);
    if (!t->x || !t->y) error = host->error_new(FLARE_ERROR_INTERNAL, "c_linear: out of memory");
  }
  if (error) {
    free(t->x);
    free(t->y);
    free(t);
    return error; /* *out untouched, as the ABI asks */
  }
  t->host = host;
  t->worker = *worker; /* its strings are not kept: only numbers are read later */
  make_points(worker, 0, t->points, t->x, t->y);
  t->shape[0] = num_params;
  t->view.struct_size = sizeof t->view;
  t->view.name = "w";
  t->view.tensor.data = t->params;
  t->view.tensor.device.device_type = kDLCPU;
  t->view.tensor.ndim = 1;
  t->view.tensor.dtype.code = kDLFloat;
  t->view.tensor.dtype.bits = 32;
  t->view.tensor.dtype.lanes = 1;
  t->view.tensor.shape = t->shape;
  *out = t;
  return NULL;
}

static void destroy(flare_trainer* t) {
  free(t->x);
  free(t->y);
  free(t);
}

static flare_error* get_weights(flare_trainer* t, const flare_named_tensor** out, size_t* count) {
  *out = &t->view;
  *count = 1;
  return NULL;
}

/* `weights` is borrowed for the call: copied. */
static flare_error* set_weights(flare_trainer* t, const flare_named_tensor* weights, size_t count) {
  const DLTensor* w = count == 1 ? &weights[0].tensor : NULL;
  if (!w || strcmp(weights[0].name, "w") != 0 || w->ndim != 1 || w->shape[0] != num_params ||
      w->dtype.code != kDLFloat || w->dtype.bits != 32)
    return t->host->error_new(FLARE_ERROR_INVALID_ARGUMENT, "c_linear: expected one float32 tensor 'w' of 5 values");
  memcpy(t->params, w->data, sizeof t->params);
  return NULL;
}

/* Mean squared error on fresh points of this site (every rank computes the
 * same, so no collective is needed). */
static flare_error* evaluate(flare_trainer* t, const char* split, const char** metrics_json) {
  const long n = t->points / 4 + 1;
  float* x = malloc(sizeof(float) * (size_t)(n * dims));
  float* y = malloc(sizeof(float) * (size_t)n);
  if (!x || !y) {
    free(x);
    free(y);
    return t->host->error_new(FLARE_ERROR_INTERNAL, "c_linear: out of memory");
  }
  make_points(&t->worker, strcmp(split, "test") == 0 ? 2 : 1, n, x, y);
  double squared = 0;
  for (long i = 0; i < n; ++i) {
    const double e = predict(t, x + i * dims) - y[i];
    squared += e * e;
  }
  free(x);
  free(y);
  snprintf(t->json, sizeof t->json, "{\"loss\": %.9g, \"num_samples\": %ld}", squared / n, n);
  *metrics_json = t->json;
  return NULL;
}

/* Collective: every rank of the site makes the same all_reduce calls. */
static flare_error* train(flare_trainer* t, const flare_round_info* round, flare_train_result* out) {
  double loss = 0;
  for (long step = 0; step < t->steps; ++step) {
    /* This rank's points (every world_size-th), then the group's sum: the
     * gradient of the mean squared error over all the site's points, that
     * loss, and whether any rank was asked to stop (so all stop together: a
     * rank leaving alone would strand the others in this all_reduce). */
    float sums[num_params + 2] = {0};
    for (long i = t->worker.rank; i < t->points; i += t->worker.world_size) {
      const double e = predict(t, t->x + i * dims) - t->y[i];
      for (int j = 0; j < dims; ++j) sums[j] += (float)(2 * e * t->x[i * dims + j]);
      sums[dims] += (float)(2 * e);
      sums[num_params] += (float)(e * e);
    }
    sums[num_params + 1] = t->host->is_cancelled(t->host->context) ? 1.0f : 0.0f;
    int64_t shape[1] = {num_params + 2};
    DLTensor reduced = {.data = sums, .device = {kDLCPU, 0}, .ndim = 1,
                        .dtype = {kDLFloat, 32, 1}, .shape = shape};
    flare_error* error = t->host->all_reduce(t->host->context, &reduced, FLARE_REDUCE_SUM);
    if (error) return error; /* the host's error, passed on: the host releases it */
    if (sums[num_params + 1] > 0) {
      char message[80];
      snprintf(message, sizeof message, "c_linear: training cancelled in round %lld",
               (long long)round->round);
      return t->host->error_new(FLARE_ERROR_CANCELLED, message); /* error_new copies it */
    }
    for (int j = 0; j < num_params; ++j) t->params[j] -= (float)(t->lr * sums[j] / t->points);
    loss = sums[num_params] / t->points;
    t->steps_done += 1;
    t->host->report_progress(t->host->context, "train", 0, step + 1, t->steps);
  }
  /* A figure of the run's curves, at the site's step count (rank 0's reaches the server). */
  t->host->report_metric(t->host->context, "train_loss", loss, t->steps_done);
  snprintf(t->json, sizeof t->json, "{\"train_loss\": %.9g}", loss);
  /* The caller zero-filled *out and set struct_size: fill what fits. */
  const flare_train_result result = {.struct_size = sizeof result,
                                     .weights = &t->view,
                                     .num_weights = 1,
                                     .num_samples = (double)t->points,
                                     .num_steps = t->steps,
                                     .metrics_json = t->json};
  const size_t size = out->struct_size < sizeof result ? out->struct_size : sizeof result;
  memcpy(out, &result, size);
  out->struct_size = size;
  return NULL;
}

static const flare_trainer_api_v1 api = {sizeof api, create, destroy, get_weights, set_weights,
                                         evaluate, train, validate_config};

FLARE_PLUGIN_EXPORT const flare_plugin_descriptor* flare_plugin_entry(uint32_t host_abi_major) {
  static const flare_plugin_descriptor descriptor = {
      sizeof descriptor, FLARE_ABI_VERSION_MAJOR, FLARE_ABI_VERSION_MINOR, FLARE_PLUGIN_TRAINER,
      "c_linear", "1.0.0", "linear regression in plain C on generated points", &api};
  (void)host_abi_major; /* one major: the host refuses a mismatch by name */
  return &descriptor;
}
