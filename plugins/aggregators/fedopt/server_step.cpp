#include "server_step.hpp"

#include <cmath>

#include "vector_clones.hpp"

namespace flare::fedopt {

namespace {

// One loop per rule and type, the rule a compile-time constant, so that each
// compiles to straight vector code (sqrt and division included: this file is
// built with -fno-math-errno).
template <Rule R, class T>
[[gnu::always_inline]] inline void step_loop(const Step& s, T* __restrict sum,
                                             const T* __restrict global, T* __restrict m,
                                             T* __restrict v, double scale, size_t n) {
  const T eta = static_cast<T>(s.eta), beta1 = static_cast<T>(s.beta1),
          rest1 = static_cast<T>(1.0 - s.beta1), beta2 = static_cast<T>(s.beta2),
          rest2 = static_cast<T>(1.0 - s.beta2), tau = static_cast<T>(s.tau);
  for (size_t i = 0; i < n; ++i) {
    const T mean = static_cast<T>(static_cast<double>(sum[i]) * scale);
    const T g = global[i];
    const T delta = mean - g;
    if constexpr (R == Rule::Momentum) {
      const T momentum = beta1 * m[i] + delta;
      m[i] = momentum;
      sum[i] = g + eta * momentum;
    } else {
      const T first = beta1 * m[i] + rest1 * delta;
      const T square = delta * delta;
      T second;
      if constexpr (R == Rule::Adagrad) {
        second = v[i] + square;
      } else if constexpr (R == Rule::Adam) {
        second = beta2 * v[i] + rest2 * square;
      } else {
        const T gap = v[i] - square;
        const T sign = static_cast<T>(gap > 0) - static_cast<T>(gap < 0);
        second = v[i] - rest2 * square * sign;
      }
      m[i] = first;
      v[i] = second;
      sum[i] = g + eta * first / (std::sqrt(second) + tau);
    }
  }
}

#define FLARE_STEP_CLONE(name, rule, T)                                                      \
  FLARE_VECTOR_CLONES void name(const Step& s, T* sum, const T* global, T* m, T* v,          \
                                double scale, size_t n) {                                    \
    step_loop<rule, T>(s, sum, global, m, v, scale, n);                                      \
  }
FLARE_STEP_CLONE(momentum_step, Rule::Momentum, float)
FLARE_STEP_CLONE(adagrad_step, Rule::Adagrad, float)
FLARE_STEP_CLONE(adam_step, Rule::Adam, float)
FLARE_STEP_CLONE(yogi_step, Rule::Yogi, float)
FLARE_STEP_CLONE(momentum_step, Rule::Momentum, double)
FLARE_STEP_CLONE(adagrad_step, Rule::Adagrad, double)
FLARE_STEP_CLONE(adam_step, Rule::Adam, double)
FLARE_STEP_CLONE(yogi_step, Rule::Yogi, double)
#undef FLARE_STEP_CLONE

template <class T>
void dispatch(const Step& s, T* sum, const T* global, T* m, T* v, double scale, size_t n) {
  switch (s.rule) {
    case Rule::Momentum: return momentum_step(s, sum, global, m, v, scale, n);
    case Rule::Adagrad: return adagrad_step(s, sum, global, m, v, scale, n);
    case Rule::Adam: return adam_step(s, sum, global, m, v, scale, n);
    case Rule::Yogi: return yogi_step(s, sum, global, m, v, scale, n);
  }
}

}  // namespace

void apply(const Step& step, float* sum, const float* global, float* m, float* v, double scale,
           size_t n) {
  dispatch(step, sum, global, m, v, scale, n);
}

void apply(const Step& step, double* sum, const double* global, double* m, double* v,
           double scale, size_t n) {
  dispatch(step, sum, global, m, v, scale, n);
}

}  // namespace flare::fedopt
