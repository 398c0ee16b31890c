// The element loops of FedAvg, kept in their own unit so they can be compiled
// for vectorisation. Arrays are contiguous and do not overlap.
#pragma once

#include <cstddef>
#include <cstdint>

namespace flare::fedavg {

// sum[i] += weight * x[i]
void add_weighted(double* sum, const float* x, double weight, size_t n);
void add_weighted(double* sum, const double* x, double weight, size_t n);

// out[i] = sum[i] * scale
void scale_into(float* out, const double* sum, double scale, size_t n);
void scale_into(double* out, const double* sum, double scale, size_t n);

// True when every element is finite (no NaN, no infinity).
bool all_finite(const float* x, size_t n);
bool all_finite(const double* x, size_t n);

}  // namespace flare::fedavg
