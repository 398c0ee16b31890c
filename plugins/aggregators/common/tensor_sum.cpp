#include "tensor_sum.hpp"

#include <algorithm>

#include "flat_math.hpp"

namespace flare::agg {

namespace {

// Elements checked then folded at a time: 16 KiB of float32 (32 of float64)
// stays in the 32-48 KiB L1 between the check and the fold.
constexpr size_t kCheckBlock = 4096;

// Splits [a, b) at `written`: add(first, n, offset) over the part that holds a
// sum, set(first, n, offset) over the part not yet written this round, each
// with the element offset from a.
template <class Add, class Set>
void split_at_written(size_t written, size_t a, size_t b, Add&& add, Set&& set) {
  const size_t split = std::clamp(written, a, b);
  if (split > a) add(a, split - a, size_t{0});
  if (b > split) set(split, b - split, split - a);
}

}  // namespace

void TensorSum::reset(Summation mode) {
  value.resize(count * element_bytes);
  if (averaged && is_float32() && mode == Summation::Compensated) carry.resize(count);
  else carry = {};
  written = 0;
}

void TensorSum::fold(const void* x, size_t a, size_t b, double weight, Summation mode) {
  if (is_float32()) {
    float* sum = reinterpret_cast<float*>(value.data());
    const float* in = static_cast<const float*>(x);
    if (mode == Summation::Compensated) {
      float* c = carry.data();
      split_at_written(
          written, a, b,
          [&](size_t i, size_t n, size_t k) { one_thread::fold(sum + i, c + i, in + k, weight, n); },
          [&](size_t i, size_t n, size_t k) {
            one_thread::fold_first(sum + i, c + i, in + k, weight, n);
          });
    } else {
      split_at_written(
          written, a, b,
          [&](size_t i, size_t n, size_t k) { one_thread::fold(sum + i, in + k, weight, n); },
          [&](size_t i, size_t n, size_t k) { one_thread::fold_first(sum + i, in + k, weight, n); });
    }
  } else {
    double* sum = reinterpret_cast<double*>(value.data());
    const double* in = static_cast<const double*>(x);
    split_at_written(
        written, a, b,
        [&](size_t i, size_t n, size_t k) { one_thread::fold(sum + i, in + k, weight, n); },
        [&](size_t i, size_t n, size_t k) { one_thread::fold_first(sum + i, in + k, weight, n); });
  }
}

void TensorSum::fold_difference(const void* x, const void* base, size_t a, size_t b,
                                double weight) {
  auto run = [&]<class T>(T* sum, const T* in, const T* minus) {
    split_at_written(
        written, a, b,
        [&](size_t i, size_t n, size_t k) {
          one_thread::fold_difference(sum + i, in + k, minus + k, weight, n);
        },
        [&](size_t i, size_t n, size_t k) {
          one_thread::fold_difference_first(sum + i, in + k, minus + k, weight, n);
        });
  };
  if (is_float32())
    run(reinterpret_cast<float*>(value.data()), static_cast<const float*>(x),
        static_cast<const float*>(base));
  else
    run(reinterpret_cast<double*>(value.data()), static_cast<const double*>(x),
        static_cast<const double*>(base));
}

size_t TensorSum::fold_finite(const void* x, size_t a, size_t b, double weight, Summation mode) {
  const auto* bytes = static_cast<const std::byte*>(x);
  for (size_t first = a; first < b; first += kCheckBlock) {
    const size_t last = std::min(b, first + kCheckBlock);
    const void* block = bytes + (first - a) * element_bytes;
    const bool finite =
        is_float32() ? one_thread::all_finite(static_cast<const float*>(block), last - first)
                     : one_thread::all_finite(static_cast<const double*>(block), last - first);
    if (!finite) return first - a;
    fold(block, first, last, weight, mode);
  }
  return b - a;
}

void TensorSum::finish(size_t a, size_t b, double scale, Summation mode) {
  if (is_float32()) {
    float* sum = reinterpret_cast<float*>(value.data()) + a;
    if (mode == Summation::Compensated) one_thread::finish(sum, carry.data() + a, scale, b - a);
    else one_thread::finish(sum, scale, b - a);
  } else {
    double* sum = reinterpret_cast<double*>(value.data()) + a;
    one_thread::finish(sum, sum, scale, b - a);
  }
}

}  // namespace flare::agg
