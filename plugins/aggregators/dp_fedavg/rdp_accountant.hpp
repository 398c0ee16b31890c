// The privacy spent by the Gaussian mechanism over rounds, by Rényi
// differential privacy (Mironov 2017): one release of a sum with L2
// sensitivity C and Gaussian noise of std z C (z the noise multiplier) is
// (alpha, alpha / (2 z^2))-RDP for every order alpha > 1, and RDP adds up
// over rounds. With every site in every round (no sampling, so no
// amplification), T rounds give RDP(alpha) = T alpha / (2 z^2).
//
// (epsilon, delta)-DP follows by the conversion of Balle et al. 2020
// ("Hypothesis Testing Interpretations and Renyi Differential Privacy",
// Theorem 21), the one TF Privacy and Opacus use:
//   epsilon = min over alpha of
//             RDP(alpha) + log((alpha - 1) / alpha) - (log delta + log alpha) / (alpha - 1)
// over a fixed grid of orders (orders()): 1.1 to 10.9 by 0.1, 11 to 63, 128,
// 256, 512. It is never looser than Mironov's RDP + log(1/delta) / (alpha - 1).
#pragma once

#include <cstddef>
#include <span>
#include <vector>

namespace flare::dp {

class RdpAccountant {
 public:
  RdpAccountant();

  static std::span<const double> orders();

  // One more release with noise multiplier z (0: no noise, no bound: every
  // order's RDP becomes infinite).
  void add_gaussian_round(double noise_multiplier);
  // The smallest epsilon over the orders for `delta` in (0, 1); 0 before any
  // round, infinity after a round without noise.
  double epsilon(double delta) const;

  // The accumulated RDP per order (orders()'s), for a checkpoint.
  std::span<const double> rdp() const { return rdp_; }
  // Throws std::invalid_argument unless `rdp` has one value >= 0 per order.
  void set_rdp(std::span<const double> rdp);

 private:
  std::vector<double> rdp_;
};

}  // namespace flare::dp
