#include "cpu_features.hpp"

#include <atomic>

namespace robust {
namespace {

bool cpu_has_avx2_fma() {
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

std::atomic<bool> switched_on{true};

}  // namespace

bool has_avx2_fma() {
  return switched_on.load(std::memory_order_relaxed) && cpu_has_avx2_fma();
}

void use_avx2_fma(bool on) { switched_on.store(on, std::memory_order_relaxed); }

}  // namespace robust
