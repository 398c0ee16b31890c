// The arithmetic aggregators share, over flat contiguous buffers, vectorised
// and split over all cores (parallel_chunks.hpp). Arrays do not overlap unless
// a function says so.
//
// float32 sums are kept as two float32 arrays, `sum` and `carry` (a
// compensated, "double-float" sum): each fold adds w * x exactly into the pair
// (the product is exact in double, its float rounding error and the rounding
// error of the addition go into carry), so the result is within about one
// float32 rounding of the exact weighted sum whatever order the sites arrive
// in, in the same memory as a float64 sum (2x the model) but with the result
// written in place over `sum` (no third copy).
//
// Plain float32 sums (`fold_first` / `fold` / `finish` on one float array) are
// the cheap alternative, 1x the model: each fold adds float(w) * x in float32
// (w, the product and the sum each rounded once), `finish` scales in double
// and rounds once, so after n folds of an element, to first order,
// |result - exact mean| <= (n + 2) * 2^-24 * sum_k w_k |x_k| / sum_k w_k
// (recursive summation's bound; the order of arrival moves the result within
// it). Taking a fold back is a fold with -w (the same product, negated).
#pragma once

#include <cstddef>

namespace flare::agg {

// First fold of a round: sum = w * x, carry = its rounding error (nothing to
// read back, so no zeroing pass is needed).
void fold_first(float* sum, float* carry, const float* x, double weight, size_t n);
// sum + carry += w * x, compensated.
void fold(float* sum, float* carry, const float* x, double weight, size_t n);
// sum = (sum + carry) * scale rounded to float32 once, in place.
void finish(float* sum, const float* carry, double scale, size_t n);

// Plain float32: sum = w * x, sum += w * x, sum *= scale in place.
void fold_first(float* sum, const float* x, double weight, size_t n);
void fold(float* sum, const float* x, double weight, size_t n);
void finish(float* sum, double scale, size_t n);

// float64 tensors: sum = w * x, sum += w * x, out = sum * scale (out may be sum).
void fold_first(double* sum, const double* x, double weight, size_t n);
void fold(double* sum, const double* x, double weight, size_t n);
void finish(double* out, const double* sum, double scale, size_t n);

// True when every element is finite (no NaN, no infinity).
bool all_finite(const float* x, size_t n);
bool all_finite(const double* x, size_t n);

// sqrt(sum x^2), accumulated in double per fixed chunk and the chunks added in
// order: the same bits for any number of threads.
double l2_norm(const float* x, size_t n);

// The same loops on the calling thread alone, for aggregators that split a
// whole model's work themselves (for_each_chunk_of in parallel_chunks.hpp).
namespace one_thread {
void fold_first(float* sum, float* carry, const float* x, double weight, size_t n);
void fold(float* sum, float* carry, const float* x, double weight, size_t n);
void finish(float* sum, const float* carry, double scale, size_t n);
void fold_first(float* sum, const float* x, double weight, size_t n);
void fold(float* sum, const float* x, double weight, size_t n);
void finish(float* sum, double scale, size_t n);
void fold_first(double* sum, const double* x, double weight, size_t n);
void fold(double* sum, const double* x, double weight, size_t n);
void finish(double* out, const double* sum, double scale, size_t n);
bool all_finite(const float* x, size_t n);
bool all_finite(const double* x, size_t n);
// sum = w * (x - base), sum += w * (x - base): a difference from the global
// model folded in (float32: each operation rounded to float32 once).
void fold_difference_first(float* sum, const float* x, const float* base, double weight, size_t n);
void fold_difference(float* sum, const float* x, const float* base, double weight, size_t n);
void fold_difference_first(double* sum, const double* x, const double* base, double weight,
                           size_t n);
void fold_difference(double* sum, const double* x, const double* base, double weight, size_t n);
// sum (x - base)^2, accumulated in double.
double squared_distance(const float* x, const float* base, size_t n);
double squared_distance(const double* x, const double* base, size_t n);
}  // namespace one_thread

// How many threads the functions above may use (0: every usable CPU). For
// tests and benchmarks; process-wide.
void set_max_threads(size_t threads);
size_t max_threads();

}  // namespace flare::agg
