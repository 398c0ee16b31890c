#include "weighted_sum.hpp"

#include <cstring>

namespace flare::fedavg {
namespace {

template <class T>
void add_weighted_impl(double* __restrict sum, const T* __restrict x, double weight, size_t n) {
  for (size_t i = 0; i < n; ++i) sum[i] += weight * static_cast<double>(x[i]);
}

template <class T>
void scale_into_impl(T* __restrict out, const double* __restrict sum, double scale, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<T>(sum[i] * scale);
}

// Exponent bits all set means NaN or infinity: (exponent + 1) then carries
// into the bit above it. Integer shifts and ORs vectorise (no early exit).
template <class Bits, class T, int MantissaBits, Bits ExponentMask>
bool all_finite_impl(const T* x, size_t n) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(x);
  Bits bad = 0;
  for (size_t i = 0; i < n; ++i) {
    Bits b;
    std::memcpy(&b, bytes + i * sizeof(T), sizeof(T));
    const Bits exponent = (b >> MantissaBits) & ExponentMask;
    bad |= (exponent + 1) & (ExponentMask + 1);
  }
  return bad == 0;
}

}  // namespace

void add_weighted(double* sum, const float* x, double weight, size_t n) {
  add_weighted_impl(sum, x, weight, n);
}
void add_weighted(double* sum, const double* x, double weight, size_t n) {
  add_weighted_impl(sum, x, weight, n);
}
void scale_into(float* out, const double* sum, double scale, size_t n) {
  scale_into_impl(out, sum, scale, n);
}
void scale_into(double* out, const double* sum, double scale, size_t n) {
  scale_into_impl(out, sum, scale, n);
}
bool all_finite(const float* x, size_t n) {
  return all_finite_impl<uint32_t, float, 23, 0xffu>(x, n);
}
bool all_finite(const double* x, size_t n) {
  return all_finite_impl<uint64_t, double, 52, 0x7ffu>(x, n);
}

}  // namespace flare::fedavg
