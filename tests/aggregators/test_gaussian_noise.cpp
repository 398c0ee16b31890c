// dp_fedavg's noise generator (plugins/aggregators/dp_fedavg/gaussian_noise):
// its polynomial log / sin / cos against libm's Box-Muller of the same
// uniforms, and draws that depend on their index alone.
#include "gaussian_noise.hpp"

#include <bit>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <vector>

#include <doctest/doctest.h>

using flare::dp::mix64;
using flare::dp::normal_pairs;

namespace {

// The stream as gaussian_noise.hpp specifies it: output k of SplitMix64 from
// `key`, 52 bits of it as u in [0, 1); u1 = 1 - u, u2 = u.
uint64_t output(uint64_t key, uint64_t k) { return mix64(key + (k + 1) * 0x9e3779b97f4a7c15ull); }
double unit(uint64_t bits) { return static_cast<double>(bits >> 12) * 0x1p-52; }

}  // namespace

TEST_CASE("normal pairs are libm's Box-Muller of the stream's uniforms, to 1e-14") {
  const size_t pairs = 1'000'003;
  std::vector<double> first(pairs), second(pairs);
  normal_pairs(77, 5, pairs, first.data(), second.data());
  double worst = 0, extreme = 0;
  for (size_t i = 0; i < pairs; ++i) {
    const uint64_t pair = 5 + i;
    const double u1 = 1.0 - unit(output(77, 2 * pair)), u2 = unit(output(77, 2 * pair + 1));
    const double radius = std::sqrt(-2.0 * std::log(u1)), angle = 2 * std::numbers::pi * u2;
    worst = std::max(worst, std::abs(first[i] - radius * std::cos(angle)));
    worst = std::max(worst, std::abs(second[i] - radius * std::sin(angle)));
    extreme = std::max(extreme, std::abs(first[i]));
  }
  CHECK(worst < 1e-14);
  CHECK(extreme > 4.0);  // a million pairs reach past 4 sigma
}

TEST_CASE("a draw depends on its index alone, not on the block it is drawn in") {
  std::vector<double> a(1000), b(1000), c(1000), d(1000);
  normal_pairs(9, 0, 1000, a.data(), b.data());
  normal_pairs(9, 0, 333, c.data(), d.data());
  normal_pairs(9, 333, 667, c.data() + 333, d.data() + 333);
  CHECK(a == c);
  CHECK(b == d);
  normal_pairs(10, 0, 1000, c.data(), d.data());  // another key: other draws
  size_t same = 0;
  for (size_t i = 0; i < 1000; ++i) same += a[i] == c[i];
  CHECK(same == 0);
}

TEST_CASE("stream keys differ for every seed, round and tensor") {
  CHECK(flare::dp::stream_key(1, 0, 0) != flare::dp::stream_key(2, 0, 0));
  CHECK(flare::dp::stream_key(1, 0, 0) != flare::dp::stream_key(1, 1, 0));
  CHECK(flare::dp::stream_key(1, 0, 0) != flare::dp::stream_key(1, 0, 1));
  CHECK(flare::dp::stream_key(1, 1, 0) != flare::dp::stream_key(1, 0, 1));
}
