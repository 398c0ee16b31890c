#include "transport/wire_kernels.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "transport/wire_codec.hpp"

#if defined(__x86_64__)
#include <immintrin.h>
// The loops are compiled for AVX2 and for the baseline; the loader picks one
// for the CPU it runs on. No -ffast-math: the rounding tricks below rely on
// IEEE arithmetic and subnormals.
#define FLARE_WIRE_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define FLARE_WIRE_CLONES
#endif

static_assert(std::endian::native == std::endian::little,
              "the wire is little-endian: a big-endian host needs byte swaps here");

namespace flare::transport::wire_kernels {
namespace {

// Wire bytes may sit at any address: each loop works on an aligned tile of
// this many values and copies it to or from the wire, so it vectorises.
constexpr size_t kTile = kInt8BlockElements;

uint32_t bits_of(float x) { return std::bit_cast<uint32_t>(x); }
float float_of(uint32_t bits) { return std::bit_cast<float>(bits); }

// Index of the first value in [0, n) whose |bits| lies in [from, infinity),
// i.e. a finite value at or above the overflow threshold; n if none.
size_t first_overflow(const float* src, size_t n, uint32_t from) {
  for (size_t i = 0; i < n; ++i) {
    const uint32_t magnitude = bits_of(src[i]) & 0x7FFFFFFFu;
    if (magnitude >= from && magnitude < 0x7F800000u) return i;
  }
  return n;
}

// Returns the largest |x|'s bits: the loops stay short, and the rare tile
// holding a value near overflow, an infinity or a NaN is looked at again.
FLARE_WIRE_CLONES
uint32_t bfloat16_tile_rounded(const float* __restrict src, size_t n, uint16_t* __restrict out) {
  uint32_t largest = 0;
  for (size_t i = 0; i < n; ++i) {
    const uint32_t bits = bits_of(src[i]);
    // Round to nearest even on the bits: adding 0x7FFF plus the kept lowest
    // bit carries into the kept half exactly when the dropped half is above
    // one half, or one half with an odd kept half.
    out[i] = static_cast<uint16_t>((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
    largest = std::max(largest, bits & 0x7FFFFFFFu);
  }
  return largest;
}

bool bfloat16_tile(const float* src, size_t n, uint16_t* out) {
  if (bfloat16_tile_rounded(src, n, out) < kBFloat16OverflowBits) return false;
  // A NaN whose payload is all in the dropped half would round to infinity.
  for (size_t i = 0; i < n; ++i) {
    const uint32_t bits = bits_of(src[i]);
    if ((bits & 0x7FFFFFFFu) > 0x7F800000u) out[i] = static_cast<uint16_t>((bits >> 16) | 0x0040u);
  }
  return first_overflow(src, n, kBFloat16OverflowBits) < n;
}

FLARE_WIRE_CLONES
void bfloat16_decode_tile(const uint16_t* __restrict in, size_t n, float* __restrict out) {
  for (size_t i = 0; i < n; ++i) out[i] = float_of(static_cast<uint32_t>(in[i]) << 16);
}

// Float16 without F16C: Maratyszcza's FP16 library's branch-free conversions.
// Scaling by 2^112 then 2^-110 lets the float32 unit do the rounding to
// nearest even, subnormals included; the bias term aligns the kept bits.
uint16_t float16_bits(float x) {
  float base = (std::abs(x) * 0x1.0p+112f) * 0x1.0p-110f;
  const uint32_t w = bits_of(x);
  const uint32_t shl1_w = w + w;
  const uint32_t sign = w & 0x80000000u;
  const uint32_t bias = std::max(shl1_w & 0xFF000000u, 0x71000000u);
  base = float_of((bias >> 1) + 0x07800000u) + base;
  const uint32_t bits = bits_of(base);
  const uint32_t exponent = (bits >> 13) & 0x00007C00u;
  const uint32_t mantissa = bits & 0x00000FFFu;
  const uint32_t nan = 0x7E00u;
  return static_cast<uint16_t>((sign >> 16) | (shl1_w > 0xFF000000u ? nan : exponent + mantissa));
}

float float_of_float16(uint16_t h) {
  const uint32_t w = static_cast<uint32_t>(h) << 16;
  const uint32_t sign = w & 0x80000000u;
  const uint32_t two_w = w + w;
  // Normal: move the exponent and mantissa into place, then rebias by 2^-112.
  const float normal = float_of((two_w >> 4) + (0xE0u << 23)) * 0x1.0p-112f;
  // Subnormal: the mantissa as the low bits of 0.5's significand, minus 0.5.
  const float subnormal = float_of((two_w >> 17) | (126u << 23)) - 0.5f;
  const uint32_t magnitude = two_w < (1u << 27) ? bits_of(subnormal) : bits_of(normal);
  return float_of(sign | magnitude);
}

FLARE_WIRE_CLONES
uint32_t float16_tile_rounded(const float* __restrict src, size_t n, uint16_t* __restrict out) {
  uint32_t largest = 0;
  for (size_t i = 0; i < n; ++i) {
    out[i] = float16_bits(src[i]);
    largest = std::max(largest, bits_of(src[i]) & 0x7FFFFFFFu);
  }
  return largest;
}

bool float16_tile(const float* src, size_t n, uint16_t* out) {
  return float16_tile_rounded(src, n, out) >= kFloat16OverflowBits &&
         first_overflow(src, n, kFloat16OverflowBits) < n;
}

FLARE_WIRE_CLONES
void float16_decode_tile(const uint16_t* __restrict in, size_t n, float* __restrict out) {
  for (size_t i = 0; i < n; ++i) out[i] = float_of_float16(in[i]);
}

// The 16-bit encodings share their tiling: `tile` converts up to kTile values
// and says whether one overflowed.
template <class Tile>
size_t encode_16bit(const float* src, size_t n, std::byte* out, Tile tile, uint32_t overflow_from) {
  alignas(64) uint16_t staged[kTile];
  for (size_t start = 0; start < n; start += kTile) {
    const size_t count = std::min(kTile, n - start);
    if (tile(src + start, count, staged))
      return start + first_overflow(src + start, count, overflow_from);
    std::memcpy(out + 2 * start, staged, 2 * count);
  }
  return n;
}

template <class Tile>
void decode_16bit(const std::byte* in, size_t n, float* out, Tile tile) {
  alignas(64) uint16_t staged[kTile];
  for (size_t start = 0; start < n; start += kTile) {
    const size_t count = std::min(kTile, n - start);
    std::memcpy(staged, in + 2 * start, 2 * count);
    tile(staged, count, out + start);
  }
}

// Int8: one block. The largest |x| is found on the bits (for non-negative
// floats integer order is float order), which also flags NaN and infinity.
FLARE_WIRE_CLONES
uint32_t largest_magnitude_bits(const float* __restrict src, size_t n) {
  uint32_t largest = 0;
  for (size_t i = 0; i < n; ++i) largest = std::max(largest, bits_of(src[i]) & 0x7FFFFFFFu);
  return largest;
}

FLARE_WIRE_CLONES
void quantize(const float* __restrict src, size_t n, float divisor, int8_t* __restrict out) {
  for (size_t i = 0; i < n; ++i) {
    const float v = std::clamp(src[i] / divisor, -127.0f, 127.0f);
    // Adding 1.5 * 2^23 leaves no fraction bits, so the float unit rounds v
    // to the nearest integer, ties to even; subtracting it back is exact.
    const float rounded = (v + 0x1.8p23f) - 0x1.8p23f;
    out[i] = static_cast<int8_t>(static_cast<int32_t>(rounded));
  }
}

FLARE_WIRE_CLONES
void dequantize(const int8_t* __restrict in, size_t n, float scale, float* __restrict out) {
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<float>(in[i]) * scale;
}

}  // namespace

size_t encode_bfloat16(const float* src, size_t n, std::byte* out) {
  return encode_16bit(src, n, out, bfloat16_tile, kBFloat16OverflowBits);
}

void decode_bfloat16(const std::byte* in, size_t n, float* out) {
  decode_16bit(in, n, out, bfloat16_decode_tile);
}

size_t encode_float16_portable(const float* src, size_t n, std::byte* out) {
  return encode_16bit(src, n, out, float16_tile, kFloat16OverflowBits);
}

void decode_float16_portable(const std::byte* in, size_t n, float* out) {
  decode_16bit(in, n, out, float16_decode_tile);
}

#if defined(__x86_64__)
bool have_f16c() {
  static const bool has = __builtin_cpu_supports("avx") && __builtin_cpu_supports("f16c");
  return has;
}

__attribute__((target("avx,f16c"))) size_t encode_float16_f16c(const float* src, size_t n,
                                                                 std::byte* out) {
  const __m256 sign_mask = _mm256_set1_ps(-0.0f);
  const __m256 overflow_from = _mm256_set1_ps(65520.0f);
  const __m256 largest_finite = _mm256_set1_ps(0x1.fffffep127f);
  constexpr size_t kLanes = 8;
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const __m256 x = _mm256_loadu_ps(src + i);
    const __m256 magnitude = _mm256_andnot_ps(sign_mask, x);
    const __m256 overflow = _mm256_and_ps(_mm256_cmp_ps(magnitude, overflow_from, _CMP_GE_OQ),
                                          _mm256_cmp_ps(magnitude, largest_finite, _CMP_LE_OQ));
    if (_mm256_movemask_ps(overflow) != 0)
      return i + first_overflow(src + i, kLanes, kFloat16OverflowBits);
    const __m128i h = _mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 2 * i), h);
  }
  const size_t rest = encode_float16_portable(src + i, n - i, out + 2 * i);
  return i + rest;
}

__attribute__((target("avx,f16c"))) void decode_float16_f16c(const std::byte* in, size_t n,
                                                               float* out) {
  constexpr size_t kLanes = 8;
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + 2 * i));
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(h));
  }
  decode_float16_portable(in + 2 * i, n - i, out + i);
}
#else
bool have_f16c() { return false; }
size_t encode_float16_f16c(const float* src, size_t n, std::byte* out) {
  return encode_float16_portable(src, n, out);
}
void decode_float16_f16c(const std::byte* in, size_t n, float* out) {
  decode_float16_portable(in, n, out);
}
#endif

void encode_int8_blockwise(const float* src, size_t n, std::byte* out) {
  alignas(64) int8_t staged[kInt8BlockElements];
  for (size_t start = 0; start < n; start += kInt8BlockElements) {
    const size_t count = std::min(kInt8BlockElements, n - start);
    const uint32_t largest = largest_magnitude_bits(src + start, count);
    float scale;
    if (largest >= 0x7F800000u) {
      // A NaN scale makes the whole block decode to NaN: still non-finite.
      scale = float_of(0x7FC00000u);
      std::fill_n(staged, count, int8_t{0});
    } else {
      scale = float_of(largest) / 127.0f;
      // Near float32's largest, 127 steps of a scale rounded up would
      // decode to infinity.
      if (std::isinf(127.0f * scale)) scale = std::nextafter(scale, 0.0f);
      // A block so small that its scale underflows to 0 becomes zeros:
      // dividing by 1 leaves values below 2^-142, which round to 0 (0 / 0
      // would be NaN, whose conversion to an integer is undefined).
      quantize(src + start, count, scale > 0 ? scale : 1.0f, staged);
    }
    std::byte* block = out + start + sizeof(float) * (start / kInt8BlockElements);
    std::memcpy(block, &scale, sizeof scale);
    std::memcpy(block + sizeof scale, staged, count);
  }
}

void decode_int8_blockwise(const std::byte* in, size_t n, float* out) {
  alignas(64) int8_t staged[kInt8BlockElements];
  for (size_t start = 0; start < n; start += kInt8BlockElements) {
    const size_t count = std::min(kInt8BlockElements, n - start);
    const std::byte* block = in + start + sizeof(float) * (start / kInt8BlockElements);
    float scale;
    std::memcpy(&scale, block, sizeof scale);
    std::memcpy(staged, block + sizeof scale, count);
    dequantize(staged, count, scale, out + start);
  }
}

}  // namespace flare::transport::wire_kernels
