#include "tensor_sum.hpp"

#include <algorithm>

#include "flat_math.hpp"

namespace fedavg {

namespace one_thread = flare::agg::one_thread;

namespace {

bool is_float32(DLDataType t) { return t.code == kDLFloat && t.bits == 32; }

// Elements checked then folded at a time: 16 KiB of float32 (32 of float64)
// stays in the 32-48 KiB L1 between the check and the fold.
constexpr size_t kCheckBlock = 4096;

}  // namespace

void TensorSum::reset(Summation mode) {
  value.resize(count * element_bytes);
  if (averaged && is_float32(dtype) && mode == Summation::Compensated) carry.resize(count);
  else carry = {};
  written = 0;
}

void TensorSum::fold(const void* x, size_t a, size_t b, double weight, Summation mode) {
  // [a, split) is added to, [split, b) written.
  const size_t split = std::clamp(written, a, b);
  const size_t add = split - a, set = b - split;
  if (is_float32(dtype)) {
    float* sum = reinterpret_cast<float*>(value.data()) + a;
    const float* in = static_cast<const float*>(x);
    if (mode == Summation::Compensated) {
      float* c = carry.data() + a;
      if (add) one_thread::fold(sum, c, in, weight, add);
      if (set) one_thread::fold_first(sum + add, c + add, in + add, weight, set);
    } else {
      if (add) one_thread::fold(sum, in, weight, add);
      if (set) one_thread::fold_first(sum + add, in + add, weight, set);
    }
  } else {
    double* sum = reinterpret_cast<double*>(value.data()) + a;
    const double* in = static_cast<const double*>(x);
    if (add) one_thread::fold(sum, in, weight, add);
    if (set) one_thread::fold_first(sum + add, in + add, weight, set);
  }
}

size_t TensorSum::fold_finite(const void* x, size_t a, size_t b, double weight, Summation mode) {
  const auto* bytes = static_cast<const std::byte*>(x);
  for (size_t first = a; first < b; first += kCheckBlock) {
    const size_t last = std::min(b, first + kCheckBlock);
    const void* block = bytes + (first - a) * element_bytes;
    const bool finite =
        is_float32(dtype) ? one_thread::all_finite(static_cast<const float*>(block), last - first)
                          : one_thread::all_finite(static_cast<const double*>(block), last - first);
    if (!finite) return first - a;
    fold(block, first, last, weight, mode);
  }
  return b - a;
}

void TensorSum::finish(size_t a, size_t b, double scale, Summation mode) {
  if (is_float32(dtype)) {
    float* sum = reinterpret_cast<float*>(value.data()) + a;
    if (mode == Summation::Compensated) one_thread::finish(sum, carry.data() + a, scale, b - a);
    else one_thread::finish(sum, scale, b - a);
  } else {
    double* sum = reinterpret_cast<double*>(value.data()) + a;
    one_thread::finish(sum, sum, scale, b - a);
  }
}

}  // namespace fedavg
