#include "gaussian_noise.hpp"

#include <cmath>
#include <numbers>

namespace flare::dp {

namespace {

constexpr uint64_t kGolden = 0x9e3779b97f4a7c15ull;

// Output k of SplitMix64 started at `key`.
uint64_t splitmix(uint64_t key, uint64_t k) { return mix64(key + (k + 1) * kGolden); }

}  // namespace

uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t stream_key(uint64_t seed, uint64_t a, uint64_t b) {
  return mix64(mix64(mix64(seed + kGolden) ^ (a + kGolden)) ^ (b + kGolden));
}

NormalPair normal_pair(uint64_t key, uint64_t pair) {
  constexpr double kUnit = 0x1p-53;
  const double u1 = static_cast<double>((splitmix(key, 2 * pair) >> 11) + 1) * kUnit;  // (0, 1]
  const double u2 = static_cast<double>(splitmix(key, 2 * pair + 1) >> 11) * kUnit;    // [0, 1)
  const double radius = std::sqrt(-2.0 * std::log(u1));
  const double angle = 2.0 * std::numbers::pi * u2;
  return {radius * std::cos(angle), radius * std::sin(angle)};
}

}  // namespace flare::dp
