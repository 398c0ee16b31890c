// Pins the layout of ABI v1 up to 1.4 (x86-64 / LP64 values). A field moved, inserted or
// resized in plugin_abi.h fails this build: v1 tables may only grow at the end, and each
// minor that grows one pins its new size (FLARE_*_SIZE_1_<minor>).
#include <flare/plugin_abi.h>

#include <cstddef>

#include <doctest/doctest.h>

extern "C" {
size_t flare_c_sizeof(int which);
int flare_c_has_field_num_steps(size_t struct_size);
uint32_t flare_c_entry_abi_major(void);
}

#if defined(__x86_64__) || defined(_M_X64)
static_assert(offsetof(flare_named_tensor, struct_size) == 0);
static_assert(offsetof(flare_named_tensor, name) == 8);
static_assert(offsetof(flare_named_tensor, tensor) == 16);
static_assert(sizeof(flare_named_tensor) == 64);

static_assert(offsetof(flare_host_services, struct_size) == 0);
static_assert(offsetof(flare_host_services, context) == 8);
static_assert(offsetof(flare_host_services, error_new) == 16);
static_assert(offsetof(flare_host_services, error_code) == 24);
static_assert(offsetof(flare_host_services, error_message) == 32);
static_assert(offsetof(flare_host_services, error_release) == 40);
static_assert(offsetof(flare_host_services, log) == 48);
static_assert(offsetof(flare_host_services, report_metric) == 56);
static_assert(offsetof(flare_host_services, report_progress) == 64);
static_assert(offsetof(flare_host_services, is_cancelled) == 72);
static_assert(offsetof(flare_host_services, all_reduce) == 80);
static_assert(offsetof(flare_host_services, broadcast) == 88);
static_assert(offsetof(flare_host_services, barrier) == 96);
// ABI 1.1: appended; everything above keeps its 1.0 offset.
static_assert(offsetof(flare_host_services, all_reduce_start) == 104);
static_assert(offsetof(flare_host_services, wait_work) == 112);
// ABI 1.4: appended.
static_assert(offsetof(flare_host_services, release_pages) == 120);
static_assert(sizeof(flare_host_services) == 128);

static_assert(offsetof(flare_worker_info, struct_size) == 0);
static_assert(offsetof(flare_worker_info, site_name) == 8);
static_assert(offsetof(flare_worker_info, site_index) == 16);
static_assert(offsetof(flare_worker_info, num_sites) == 20);
static_assert(offsetof(flare_worker_info, rank) == 24);
static_assert(offsetof(flare_worker_info, world_size) == 28);
static_assert(offsetof(flare_worker_info, local_rank) == 32);
static_assert(offsetof(flare_worker_info, local_world_size) == 36);
static_assert(offsetof(flare_worker_info, device) == 40);
static_assert(offsetof(flare_worker_info, num_threads) == 48);
static_assert(offsetof(flare_worker_info, seed) == 56);
static_assert(offsetof(flare_worker_info, data_dir) == 64);
static_assert(offsetof(flare_worker_info, work_dir) == 72);
static_assert(offsetof(flare_worker_info, data_json) == 80);
static_assert(sizeof(flare_worker_info) == 88);

static_assert(offsetof(flare_round_info, struct_size) == 0);
static_assert(offsetof(flare_round_info, round) == 8);
static_assert(offsetof(flare_round_info, num_rounds) == 16);
static_assert(sizeof(flare_round_info) == 24);

static_assert(offsetof(flare_train_result, struct_size) == 0);
static_assert(offsetof(flare_train_result, weights) == 8);
static_assert(offsetof(flare_train_result, num_weights) == 16);
static_assert(offsetof(flare_train_result, aux) == 24);
static_assert(offsetof(flare_train_result, num_aux) == 32);
static_assert(offsetof(flare_train_result, num_samples) == 40);
static_assert(offsetof(flare_train_result, num_steps) == 48);
static_assert(offsetof(flare_train_result, metrics_json) == 56);
static_assert(offsetof(flare_train_result, meta_json) == 64);
static_assert(sizeof(flare_train_result) == 72);

static_assert(offsetof(flare_trainer_api_v1, struct_size) == 0);
static_assert(offsetof(flare_trainer_api_v1, create) == 8);
static_assert(offsetof(flare_trainer_api_v1, destroy) == 16);
static_assert(offsetof(flare_trainer_api_v1, get_weights) == 24);
static_assert(offsetof(flare_trainer_api_v1, set_weights) == 32);
static_assert(offsetof(flare_trainer_api_v1, evaluate) == 40);
static_assert(offsetof(flare_trainer_api_v1, train) == 48);
// ABI 1.2: appended.
static_assert(offsetof(flare_trainer_api_v1, validate_config) == 56);
static_assert(sizeof(flare_trainer_api_v1) == 64);

static_assert(offsetof(flare_site_update, struct_size) == 0);
static_assert(offsetof(flare_site_update, site) == 8);
static_assert(offsetof(flare_site_update, round) == 16);
static_assert(offsetof(flare_site_update, weights) == 24);
static_assert(offsetof(flare_site_update, num_weights) == 32);
static_assert(offsetof(flare_site_update, aux) == 40);
static_assert(offsetof(flare_site_update, num_aux) == 48);
static_assert(offsetof(flare_site_update, num_samples) == 56);
static_assert(offsetof(flare_site_update, num_steps) == 64);
static_assert(offsetof(flare_site_update, metrics_json) == 72);
static_assert(offsetof(flare_site_update, meta_json) == 80);
static_assert(sizeof(flare_site_update) == 88);

static_assert(offsetof(flare_aggregator_api_v1, struct_size) == 0);
static_assert(offsetof(flare_aggregator_api_v1, create) == 8);
static_assert(offsetof(flare_aggregator_api_v1, destroy) == 16);
static_assert(offsetof(flare_aggregator_api_v1, begin_round) == 24);
static_assert(offsetof(flare_aggregator_api_v1, accept) == 32);
static_assert(offsetof(flare_aggregator_api_v1, finalize) == 40);
// ABI 1.2: appended.
static_assert(offsetof(flare_aggregator_api_v1, validate_config) == 48);
// ABI 1.3: appended.
static_assert(offsetof(flare_aggregator_api_v1, begin_update) == 56);
static_assert(offsetof(flare_aggregator_api_v1, accept_chunk) == 64);
static_assert(offsetof(flare_aggregator_api_v1, retract_chunk) == 72);
static_assert(offsetof(flare_aggregator_api_v1, end_update) == 80);
static_assert(offsetof(flare_aggregator_api_v1, abort_update) == 88);
// ABI 1.4: appended.
static_assert(offsetof(flare_aggregator_api_v1, properties) == 96);
static_assert(offsetof(flare_aggregator_api_v1, get_state) == 104);
static_assert(offsetof(flare_aggregator_api_v1, set_state) == 112);
static_assert(offsetof(flare_aggregator_api_v1, instance_properties) == 120);
static_assert(sizeof(flare_aggregator_api_v1) == 128);
static_assert(FLARE_AGGREGATOR_KEEPS_UPDATES == 1);

// ABI 1.3: new.
static_assert(offsetof(flare_update_chunk, struct_size) == 0);
static_assert(offsetof(flare_update_chunk, part) == 8);
static_assert(offsetof(flare_update_chunk, tensor_index) == 16);
static_assert(offsetof(flare_update_chunk, tensor) == 24);
static_assert(offsetof(flare_update_chunk, element_offset) == 32);
static_assert(offsetof(flare_update_chunk, num_elements) == 40);
static_assert(offsetof(flare_update_chunk, data) == 48);
static_assert(sizeof(flare_update_chunk) == 56);
static_assert(FLARE_UPDATE_WEIGHTS == 0 && FLARE_UPDATE_AUX == 1);

static_assert(offsetof(flare_plugin_descriptor, struct_size) == 0);
static_assert(offsetof(flare_plugin_descriptor, abi_major) == 8);
static_assert(offsetof(flare_plugin_descriptor, abi_minor) == 12);
static_assert(offsetof(flare_plugin_descriptor, kind) == 16);
static_assert(offsetof(flare_plugin_descriptor, name) == 24);
static_assert(offsetof(flare_plugin_descriptor, version) == 32);
static_assert(offsetof(flare_plugin_descriptor, description) == 40);
static_assert(offsetof(flare_plugin_descriptor, api) == 48);
static_assert(sizeof(flare_plugin_descriptor) == 56);

// The sizes each minor shipped: hosts and plugins of every later 1.x minor
// accept these, so they never change.
static_assert(FLARE_NAMED_TENSOR_SIZE_1_0 == 64);
static_assert(FLARE_HOST_SERVICES_SIZE_1_0 == 104);
static_assert(FLARE_HOST_SERVICES_SIZE_1_1 == 120);
static_assert(FLARE_HOST_SERVICES_SIZE_1_4 == 128);
static_assert(FLARE_WORKER_INFO_SIZE_1_0 == 80);
static_assert(FLARE_WORKER_INFO_SIZE_1_4 == 88);
static_assert(FLARE_ROUND_INFO_SIZE_1_0 == 24);
static_assert(FLARE_TRAIN_RESULT_SIZE_1_0 == 72);
static_assert(FLARE_TRAINER_API_SIZE_1_0 == 56);
static_assert(FLARE_TRAINER_API_SIZE_1_2 == 64);
static_assert(FLARE_SITE_UPDATE_SIZE_1_0 == 88);
static_assert(FLARE_AGGREGATOR_API_SIZE_1_0 == 48);
static_assert(FLARE_AGGREGATOR_API_SIZE_1_2 == 56);
static_assert(FLARE_AGGREGATOR_API_SIZE_1_3 == 96);
static_assert(FLARE_AGGREGATOR_API_SIZE_1_4 == 128);
static_assert(FLARE_UPDATE_CHUNK_SIZE_1_3 == 56);
static_assert(FLARE_PLUGIN_DESCRIPTOR_SIZE_1_0 == 56);

// Each struct is exactly its newest pinned size: a field appended without its
// FLARE_*_SIZE_1_<minor> constant (or with trailing padding) fails here.
static_assert(sizeof(flare_named_tensor) == FLARE_NAMED_TENSOR_SIZE_1_0);
static_assert(sizeof(flare_host_services) == FLARE_HOST_SERVICES_SIZE_1_4);
static_assert(sizeof(flare_worker_info) == FLARE_WORKER_INFO_SIZE_1_4);
static_assert(sizeof(flare_round_info) == FLARE_ROUND_INFO_SIZE_1_0);
static_assert(sizeof(flare_train_result) == FLARE_TRAIN_RESULT_SIZE_1_0);
static_assert(sizeof(flare_trainer_api_v1) == FLARE_TRAINER_API_SIZE_1_2);
static_assert(sizeof(flare_site_update) == FLARE_SITE_UPDATE_SIZE_1_0);
static_assert(sizeof(flare_aggregator_api_v1) == FLARE_AGGREGATOR_API_SIZE_1_4);
static_assert(sizeof(flare_update_chunk) == FLARE_UPDATE_CHUNK_SIZE_1_3);
static_assert(sizeof(flare_plugin_descriptor) == FLARE_PLUGIN_DESCRIPTOR_SIZE_1_0);
#endif

static_assert(FLARE_ABI_VERSION_MAJOR == 1, "a new major needs its own layout test");
static_assert(FLARE_ABI_VERSION_MINOR >= 4, "the 1.4 fields are pinned above");

TEST_CASE("the C compiler and the C++ compiler agree on every struct's size") {
  CHECK(flare_c_sizeof(0) == sizeof(flare_named_tensor));
  CHECK(flare_c_sizeof(1) == sizeof(flare_host_services));
  CHECK(flare_c_sizeof(2) == sizeof(flare_worker_info));
  CHECK(flare_c_sizeof(3) == sizeof(flare_round_info));
  CHECK(flare_c_sizeof(4) == sizeof(flare_train_result));
  CHECK(flare_c_sizeof(5) == sizeof(flare_trainer_api_v1));
  CHECK(flare_c_sizeof(6) == sizeof(flare_site_update));
  CHECK(flare_c_sizeof(7) == sizeof(flare_aggregator_api_v1));
  CHECK(flare_c_sizeof(8) == sizeof(flare_plugin_descriptor));
  CHECK(flare_c_sizeof(9) == sizeof(flare_update_chunk));
}

TEST_CASE("a plugin entry written in C returns a descriptor of this ABI major") {
  CHECK(flare_c_entry_abi_major() == FLARE_ABI_VERSION_MAJOR);
}

TEST_CASE("FLARE_HAS_FIELD sees only the fields inside the writer's struct_size") {
  flare_train_result result{};
  result.struct_size = sizeof(result);
  CHECK(FLARE_HAS_FIELD(&result, flare_train_result, meta_json));

  // A writer that stops right after num_steps (an older, shorter struct).
  result.struct_size = offsetof(flare_train_result, num_steps) + sizeof(int64_t);
  CHECK(FLARE_HAS_FIELD(&result, flare_train_result, num_steps));
  CHECK_FALSE(FLARE_HAS_FIELD(&result, flare_train_result, metrics_json));
  CHECK_FALSE(FLARE_HAS_FIELD(&result, flare_train_result, meta_json));

  // One byte short of a field is not the field.
  result.struct_size = offsetof(flare_train_result, num_steps) + sizeof(int64_t) - 1;
  CHECK_FALSE(FLARE_HAS_FIELD(&result, flare_train_result, num_steps));
  CHECK(FLARE_HAS_FIELD(&result, flare_train_result, num_samples));

  flare_host_services services{};
  services.struct_size = offsetof(flare_host_services, is_cancelled);
  CHECK(FLARE_HAS_FIELD(&services, flare_host_services, report_progress));
  CHECK_FALSE(FLARE_HAS_FIELD(&services, flare_host_services, is_cancelled));
  CHECK_FALSE(FLARE_HAS_FIELD(&services, flare_host_services, barrier));

  // A 1.0 host's table ends after barrier: no asynchronous all-reduce.
  services.struct_size = FLARE_HOST_SERVICES_SIZE_1_0;
  CHECK(FLARE_HAS_FIELD(&services, flare_host_services, barrier));
  CHECK_FALSE(FLARE_HAS_FIELD(&services, flare_host_services, all_reduce_start));
  CHECK_FALSE(FLARE_HAS_FIELD(&services, flare_host_services, wait_work));
  services.struct_size = sizeof(services);
  CHECK(FLARE_HAS_FIELD(&services, flare_host_services, wait_work));
}

TEST_CASE("FLARE_HAS_FIELD agrees between C and C++") {
  const size_t through_steps = offsetof(flare_train_result, num_steps) + sizeof(int64_t);
  CHECK(flare_c_has_field_num_steps(through_steps) == 1);
  CHECK(flare_c_has_field_num_steps(through_steps - 1) == 0);
  CHECK(flare_c_has_field_num_steps(sizeof(flare_train_result)) == 1);
}
