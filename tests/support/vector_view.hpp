// A 1-D DLTensor over a std::vector, for the collectives tests.
#pragma once

#include <flare/plugin.hpp>

#include <cstdint>
#include <type_traits>
#include <vector>

namespace flare::testing {

template <class T>
constexpr DLDataType dl_dtype_of() {
  const uint8_t code = std::is_floating_point_v<T> ? kDLFloat
                       : std::is_signed_v<T>       ? kDLInt
                                                   : kDLUInt;
  return {code, static_cast<uint8_t>(sizeof(T) * 8), 1};
}

// `shape` receives the length and must outlive the view.
template <class T>
DLTensor vector_view(std::vector<T>& values, int64_t& shape) {
  shape = static_cast<int64_t>(values.size());
  return flare::dl_view(values.data(), dl_dtype_of<T>(), &shape, 1);
}

}  // namespace flare::testing
