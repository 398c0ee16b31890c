// The few AVX2 + FMA operations the hand-vectorised kernels need, on 32
// bytes of float32 or float64 lanes, for code compiled inside
//   #pragma GCC push_options
//   #pragma GCC target("avx2,fma")
// and run only where has_avx2_fma() (cpu_features.hpp). x86-64 only.
#pragma once

#if defined(__x86_64__)
#include <immintrin.h>

#include <cstddef>

#pragma GCC push_options
#pragma GCC target("avx2,fma")

namespace robust {

struct Avx2Float {
  using T = float;
  using V = __m256;
  static constexpr size_t kLanes = 8;
  static V load(const T* p) { return _mm256_loadu_ps(p); }
  static void store(T* p, V v) { _mm256_storeu_ps(p, v); }
  static V splat(T x) { return _mm256_set1_ps(x); }
  static V zero() { return _mm256_setzero_ps(); }
  static V min(V a, V b) { return _mm256_min_ps(a, b); }  // a < b ? a : b
  static V max(V a, V b) { return _mm256_max_ps(a, b); }  // a > b ? a : b
  static V sub(V a, V b) { return _mm256_sub_ps(a, b); }
  static V fmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V abs(V a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
  // Masks: all ones where true.
  static V less_equal(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_LE_OQ); }
  static V both(V a, V b) { return _mm256_and_ps(a, b); }
  static V either(V a, V b) { return _mm256_or_ps(a, b); }
  static V but_not(V a, V b) { return _mm256_andnot_ps(b, a); }  // a & ~b
  static V select(V mask, V yes, V no) { return _mm256_blendv_ps(no, yes, mask); }
  static double sum(V v) {
    alignas(32) T lanes[kLanes];
    _mm256_store_ps(lanes, v);
    double total = 0;
    for (T lane : lanes) total += lane;
    return total;
  }
};

struct Avx2Double {
  using T = double;
  using V = __m256d;
  static constexpr size_t kLanes = 4;
  static V load(const T* p) { return _mm256_loadu_pd(p); }
  static void store(T* p, V v) { _mm256_storeu_pd(p, v); }
  static V splat(T x) { return _mm256_set1_pd(x); }
  static V zero() { return _mm256_setzero_pd(); }
  static V min(V a, V b) { return _mm256_min_pd(a, b); }
  static V max(V a, V b) { return _mm256_max_pd(a, b); }
  static V sub(V a, V b) { return _mm256_sub_pd(a, b); }
  static V fmadd(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
  static V abs(V a) { return _mm256_andnot_pd(_mm256_set1_pd(-0.0), a); }
  static V less_equal(V a, V b) { return _mm256_cmp_pd(a, b, _CMP_LE_OQ); }
  static V both(V a, V b) { return _mm256_and_pd(a, b); }
  static V either(V a, V b) { return _mm256_or_pd(a, b); }
  static V but_not(V a, V b) { return _mm256_andnot_pd(b, a); }
  static V select(V mask, V yes, V no) { return _mm256_blendv_pd(no, yes, mask); }
  static double sum(V v) {
    alignas(32) T lanes[kLanes];
    _mm256_store_pd(lanes, v);
    return (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
  }
};

}  // namespace robust

#pragma GCC pop_options
#endif
