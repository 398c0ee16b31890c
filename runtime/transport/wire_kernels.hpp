// The element loops behind wire_codec.hpp, one pair per encoding, on
// unaligned wire bytes. An encoder returns the index of the first finite
// value it cannot carry, or n when it carried all. Internal to
// flare_transport; exposed so that tests compare the portable float16 loops
// with the F16C ones on the same machine.
#pragma once

#include <cstddef>

namespace flare::transport::wire_kernels {

// bfloat16 bit patterns at or above this |x| (0x1.ffp127) round past the
// largest bfloat16; float16's at or above 65520 past 65504.
inline constexpr unsigned kBFloat16OverflowBits = 0x7F7F8000u;
inline constexpr unsigned kFloat16OverflowBits = 0x477FF000u;

size_t encode_bfloat16(const float* src, size_t n, std::byte* out);
void decode_bfloat16(const std::byte* in, size_t n, float* out);

// Float16: the portable loops run anywhere; the F16C ones only where
// have_f16c(). Both round to nearest even and keep subnormals, so they give
// the same bits except inside NaN payloads.
size_t encode_float16_portable(const float* src, size_t n, std::byte* out);
void decode_float16_portable(const std::byte* in, size_t n, float* out);
bool have_f16c();
size_t encode_float16_f16c(const float* src, size_t n, std::byte* out);
void decode_float16_f16c(const std::byte* in, size_t n, float* out);

// kInt8BlockElements values a block; the last block of `n` may be shorter.
void encode_int8_blockwise(const float* src, size_t n, std::byte* out);
void decode_int8_blockwise(const std::byte* in, size_t n, float* out);

}  // namespace flare::transport::wire_kernels
