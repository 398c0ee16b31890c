// What the direct CPU all-reduces (shared memory, Gloo mesh) take: a dense,
// row-major CPU tensor of float32/64 or int32/64.
#pragma once

#include <flare/plugin.hpp>

namespace flare::collectives {

inline bool reducible_on_cpu(const DLTensor& t) {
  if (t.device.device_type != kDLCPU || t.dtype.lanes != 1 || !flare::is_row_major(t))
    return false;
  const bool floating = t.dtype.code == kDLFloat && (t.dtype.bits == 32 || t.dtype.bits == 64);
  const bool integer = t.dtype.code == kDLInt && (t.dtype.bits == 32 || t.dtype.bits == 64);
  return floating || integer;
}

}  // namespace flare::collectives
