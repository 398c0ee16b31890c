// What the direct CPU all-reduces (shared memory, Gloo mesh) take: a dense,
// row-major CPU tensor of float32/64 or int32/64.
#pragma once

#include <flare/plugin_abi.h>

#include <cstdint>

namespace flare::worker {

inline int64_t element_count(const DLTensor& t) {
  int64_t n = 1;
  for (int i = 0; i < t.ndim; ++i) n *= t.shape[i];
  return n;
}

inline bool row_major(const DLTensor& t) {
  if (!t.strides) return true;
  int64_t expected = 1;
  for (int i = t.ndim - 1; i >= 0; --i) {
    if (t.shape[i] != 1 && t.strides[i] != expected) return false;
    expected *= t.shape[i];
  }
  return true;
}

inline bool reducible_on_cpu(const DLTensor& t) {
  if (t.device.device_type != kDLCPU || t.dtype.lanes != 1 || !row_major(t)) return false;
  const bool floating = t.dtype.code == kDLFloat && (t.dtype.bits == 32 || t.dtype.bits == 64);
  const bool integer = t.dtype.code == kDLInt && (t.dtype.bits == 32 || t.dtype.bits == 64);
  return floating || integer;
}

}  // namespace flare::worker
