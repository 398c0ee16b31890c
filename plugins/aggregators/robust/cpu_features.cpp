#include "cpu_features.hpp"

namespace robust {

bool has_avx2_fma() {
#if defined(__x86_64__)
  static const bool supported = [] {
    __builtin_cpu_init();  // may run before libgcc's constructor has
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  return supported;
#else
  return false;
#endif
}

}  // namespace robust
