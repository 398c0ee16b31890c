/* Proves <flare/plugin_abi.h> is plain C11: this unit is compiled by the C
 * compiler with -std=c11 -Wpedantic -Werror. It also reports the sizes the C
 * compiler sees, so the C++ test can check both languages agree on layout. */
#include <flare/plugin_abi.h>

#include <stddef.h>

_Static_assert(FLARE_ABI_VERSION_MAJOR == 1, "this test pins ABI 1");

/* The shipped sizes are C constant expressions, each within its struct. */
_Static_assert(FLARE_HOST_SERVICES_SIZE_1_0 < FLARE_HOST_SERVICES_SIZE_1_1, "1.1 appended");
_Static_assert(FLARE_HOST_SERVICES_SIZE_1_1 <= sizeof(flare_host_services), "within");
_Static_assert(FLARE_TRAINER_API_SIZE_1_0 < FLARE_TRAINER_API_SIZE_1_2, "1.2 appended");
_Static_assert(FLARE_TRAINER_API_SIZE_1_2 <= sizeof(flare_trainer_api_v1), "within");
_Static_assert(FLARE_AGGREGATOR_API_SIZE_1_0 < FLARE_AGGREGATOR_API_SIZE_1_2, "1.2 appended");
_Static_assert(FLARE_AGGREGATOR_API_SIZE_1_2 < FLARE_AGGREGATOR_API_SIZE_1_3, "1.3 appended");
_Static_assert(FLARE_AGGREGATOR_API_SIZE_1_3 <= sizeof(flare_aggregator_api_v1), "within");
_Static_assert(FLARE_UPDATE_CHUNK_SIZE_1_3 <= sizeof(flare_update_chunk), "within");
_Static_assert(FLARE_NAMED_TENSOR_SIZE_1_0 <= sizeof(flare_named_tensor), "within");
_Static_assert(FLARE_WORKER_INFO_SIZE_1_0 <= sizeof(flare_worker_info), "within");
_Static_assert(FLARE_ROUND_INFO_SIZE_1_0 <= sizeof(flare_round_info), "within");
_Static_assert(FLARE_TRAIN_RESULT_SIZE_1_0 <= sizeof(flare_train_result), "within");
_Static_assert(FLARE_TRAINER_API_SIZE_1_0 <= sizeof(flare_trainer_api_v1), "within");
_Static_assert(FLARE_SITE_UPDATE_SIZE_1_0 <= sizeof(flare_site_update), "within");
_Static_assert(FLARE_AGGREGATOR_API_SIZE_1_0 <= sizeof(flare_aggregator_api_v1), "within");
_Static_assert(FLARE_PLUGIN_DESCRIPTOR_SIZE_1_0 <= sizeof(flare_plugin_descriptor), "within");

/* A plugin written in C: a do-nothing descriptor with no table. */
static const flare_plugin_descriptor c_descriptor = {
    sizeof(flare_plugin_descriptor), FLARE_ABI_VERSION_MAJOR, FLARE_ABI_VERSION_MINOR,
    FLARE_PLUGIN_TRAINER, "c-probe", "0.0.0", "compiled as C11", NULL};

static const flare_plugin_descriptor* c_entry(uint32_t host_abi_major) {
  (void)host_abi_major;
  return &c_descriptor;
}

size_t flare_c_sizeof(int which);
int flare_c_has_field_num_steps(size_t struct_size);
uint32_t flare_c_entry_abi_major(void);

size_t flare_c_sizeof(int which) {
  switch (which) {
    case 0: return sizeof(flare_named_tensor);
    case 1: return sizeof(flare_host_services);
    case 2: return sizeof(flare_worker_info);
    case 3: return sizeof(flare_round_info);
    case 4: return sizeof(flare_train_result);
    case 5: return sizeof(flare_trainer_api_v1);
    case 6: return sizeof(flare_site_update);
    case 7: return sizeof(flare_aggregator_api_v1);
    case 8: return sizeof(flare_plugin_descriptor);
    case 9: return sizeof(flare_update_chunk);
    default: return 0;
  }
}

int flare_c_has_field_num_steps(size_t struct_size) {
  flare_train_result r = {0};
  r.struct_size = struct_size;
  return FLARE_HAS_FIELD(&r, flare_train_result, num_steps) ? 1 : 0;
}

uint32_t flare_c_entry_abi_major(void) {
  flare_plugin_entry_fn entry = &c_entry;
  return entry(FLARE_ABI_VERSION_MAJOR)->abi_major;
}
