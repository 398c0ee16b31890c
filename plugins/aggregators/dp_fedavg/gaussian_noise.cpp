#include "gaussian_noise.hpp"

#include <bit>
#include <cmath>
#include <numbers>

#include "vector_clones.hpp"

namespace flare::dp {

namespace {

constexpr uint64_t kGolden = 0x9e3779b97f4a7c15ull;

// Output k of SplitMix64 started at `key`.
inline uint64_t splitmix(uint64_t key, uint64_t k) { return mix64(key + (k + 1) * kGolden); }

// 52 random bits as a double in [1, 2).
inline double one_to_two(uint64_t bits) {
  return std::bit_cast<double>((bits >> 12) | 0x3ff0000000000000ull);
}

// A signed integer of magnitude below 2^51 as a double, exactly, through
// the 2^52 trick (AVX2 converts no 64-bit integers, so a cast would not
// vectorise).
inline double small_to_double(int64_t v) {
  constexpr uint64_t kOffset = uint64_t{1} << 51;
  return std::bit_cast<double>(0x4330000000000000ull + static_cast<uint64_t>(v) + kOffset) -
         (4503599627370496.0 + 2251799813685248.0);
}

// log(u) for u in (0, 1]: u = 2^e m with m in [sqrt(1/2), sqrt(2)), log m =
// 2 atanh(f), f = (m - 1) / (m + 1), |f| <= 0.1716: the odd series to f^23
// leaves under 1e-17. Integer arithmetic on the bits, no branches.
inline double log_unit(double u) {
  constexpr uint64_t kMantissa = 0x000fffffffffffffull;
  const uint64_t bits = std::bit_cast<uint64_t>(u);
  const uint64_t high = (bits & kMantissa) > (std::bit_cast<uint64_t>(std::numbers::sqrt2) & kMantissa);
  const int64_t e = static_cast<int64_t>(bits >> 52) - 1023 + static_cast<int64_t>(high);
  const double m = std::bit_cast<double>((bits & kMantissa) | ((0x3ffull - high) << 52));
  const double f = (m - 1.0) / (m + 1.0), f2 = f * f;
  double series = 1.0 / 23;
  for (int k = 21; k >= 1; k -= 2) series = series * f2 + 1.0 / k;
  return small_to_double(e) * std::numbers::ln2 + 2.0 * f * series;
}

// sin and cos of 2 pi u, u = r / 2^52 for 52 random bits r: the nearest
// quarter turn q = round(4u) is taken off in integers, the rest x is within
// pi/4, where the Taylor series to x^17 (sin) and x^18 (cos) leave under
// 1e-17. Horner in x^2 with the signs alternating: c0 - x^2 (c1 - x^2 (...)).
inline void sincos_turn(uint64_t r, double& s, double& c) {
  const uint64_t quarter = (r + (uint64_t{1} << 49)) >> 50;  // 0 .. 4
  const int64_t rest = static_cast<int64_t>(r) - static_cast<int64_t>(quarter << 50);
  const double x = (2.0 * std::numbers::pi * 0x1p-52) * small_to_double(rest), x2 = x * x;
  constexpr double sin_terms[] = {1.0 / 1307674368000.0, 1.0 / 6227020800.0, 1.0 / 39916800.0,
                                  1.0 / 362880.0,        1.0 / 5040.0,       1.0 / 120.0,
                                  1.0 / 6.0,             1.0};  // 1/15! .. 1/1!
  constexpr double cos_terms[] = {1.0 / 20922789888000.0, 1.0 / 87178291200.0,
                                  1.0 / 479001600.0,      1.0 / 3628800.0,
                                  1.0 / 40320.0,          1.0 / 720.0,
                                  1.0 / 24.0,             1.0 / 2.0,
                                  1.0};  // 1/16! .. 1/0!
  double sin_x = 1.0 / 355687428096000.0;   // 1/17!
  double cos_x = 1.0 / 6402373705728000.0;  // 1/18!
  for (double t : sin_terms) sin_x = t - x2 * sin_x;
  for (double t : cos_terms) cos_x = t - x2 * cos_x;
  sin_x *= x;
  // The angle is x + q pi/2: q 0 gives (sin x, cos x), 1 (cos x, -sin x), 2
  // (-sin x, -cos x), 3 (-cos x, sin x); 4 is 0. Swaps and signs as bit masks.
  const uint64_t q = quarter & 3, swap = 0 - (q & 1);
  const uint64_t sin_bits = std::bit_cast<uint64_t>(sin_x), cos_bits = std::bit_cast<uint64_t>(cos_x);
  const uint64_t s_bits = (cos_bits & swap) | (sin_bits & ~swap);
  const uint64_t c_bits = (sin_bits & swap) | (cos_bits & ~swap);
  s = std::bit_cast<double>(s_bits ^ (((q >> 1) & 1) << 63));
  c = std::bit_cast<double>(c_bits ^ ((((q + 1) >> 1) & 1) << 63));
}

}  // namespace

uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t stream_key(uint64_t seed, uint64_t a, uint64_t b) {
  return mix64(mix64(mix64(seed + kGolden) ^ (a + kGolden)) ^ (b + kGolden));
}

FLARE_VECTOR_CLONES
void normal_pairs(uint64_t key, uint64_t first_pair, size_t pairs, double* __restrict first,
                  double* __restrict second) {
  for (size_t i = 0; i < pairs; ++i) {
    const uint64_t pair = first_pair + i;
    const double u1 = 2.0 - one_to_two(splitmix(key, 2 * pair));  // (0, 1]
    const double radius = std::sqrt(-2.0 * log_unit(u1));
    double s, c;
    sincos_turn(splitmix(key, 2 * pair + 1) >> 12, s, c);  // angle 2 pi u2, u2 in [0, 1)
    first[i] = radius * c;
    second[i] = radius * s;
  }
}

}  // namespace flare::dp
