#include "rdp_accountant.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace flare::dp {

namespace {

std::vector<double> make_orders() {
  std::vector<double> orders;
  for (int x = 1; x < 100; ++x) orders.push_back(1.0 + x / 10.0);
  for (int a = 11; a < 64; ++a) orders.push_back(a);
  for (double a : {128.0, 256.0, 512.0}) orders.push_back(a);
  return orders;
}

}  // namespace

std::span<const double> RdpAccountant::orders() {
  static const std::vector<double> all = make_orders();
  return all;
}

RdpAccountant::RdpAccountant() : rdp_(orders().size(), 0.0) {}

void RdpAccountant::add_gaussian_round(double noise_multiplier) {
  const auto alphas = orders();
  for (size_t k = 0; k < alphas.size(); ++k)
    rdp_[k] += noise_multiplier > 0 ? alphas[k] / (2.0 * noise_multiplier * noise_multiplier)
                                    : std::numeric_limits<double>::infinity();
}

double RdpAccountant::epsilon(double delta) const {
  const auto alphas = orders();
  double best = std::numeric_limits<double>::infinity();
  for (size_t k = 0; k < alphas.size(); ++k) {
    const double a = alphas[k];
    const double eps =
        rdp_[k] + std::log((a - 1) / a) - (std::log(delta) + std::log(a)) / (a - 1);
    best = std::min(best, eps);
  }
  return std::max(0.0, best);
}

void RdpAccountant::set_rdp(std::span<const double> rdp) {
  if (rdp.size() != rdp_.size())
    throw std::invalid_argument("it holds " + std::to_string(rdp.size()) +
                                " RDP values, the accountant has " +
                                std::to_string(rdp_.size()) + " orders");
  for (double r : rdp)
    if (!(r >= 0)) throw std::invalid_argument("it holds an RDP value that is not >= 0");
  rdp_.assign(rdp.begin(), rdp.end());
}

}  // namespace flare::dp
