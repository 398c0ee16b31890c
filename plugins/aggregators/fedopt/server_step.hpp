// The server optimizer's step of the FedOpt family, one pass over flat
// buffers: the round's weighted mean (sum * scale), less the global model,
// is the pseudo-gradient delta; the moments are updated in place and the
// next global model is written over the sum. Per element, with t = float32
// for float32 tensors (the arithmetic, and its order, of Flower's NumPy
// strategies, which compute in the arrays' float32) and double for float64:
//
//   delta = t(sum * scale) - global
//   Momentum (FedAvgM): m = beta1 m + delta;                  x = global + eta m
//   Adagrad:  m = beta1 m + (1 - beta1) delta;  v = v + delta^2
//   Adam:     m = ...;  v = beta2 v + (1 - beta2) delta^2
//   Yogi:     m = ...;  v = v - (1 - beta2) delta^2 sign(v - delta^2)
//             (the last three)                x = global + eta m / (sqrt(v) + tau)
#pragma once

#include <cstddef>

namespace flare::fedopt {

enum class Rule { Momentum, Adagrad, Adam, Yogi };

struct Step {
  Rule rule = Rule::Adam;
  double eta = 0.1;  // this round's server learning rate
  double beta1 = 0.9;
  double beta2 = 0.99;  // Adam and Yogi
  double tau = 1e-9;    // Adagrad, Adam and Yogi
};

// Elements [0, n) on the calling thread (split a model over threads with
// flare::agg::for_each_chunk_of). `v` is unused (may be null) for Momentum.
void apply(const Step& step, float* sum, const float* global, float* m, float* v, double scale,
           size_t n);
void apply(const Step& step, double* sum, const double* global, double* m, double* v,
           double scale, size_t n);

}  // namespace flare::fedopt
