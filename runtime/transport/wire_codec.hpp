// Smaller on the wire, when the job asks ([server] wire_dtype): a float32
// tensor, or any piece of one, as bfloat16, float16 or 8-bit blockwise bytes
// and back. Pure functions on buffers (no gRPC, no LibTorch), so that the
// streaming code encodes each chunk of a tensor on its own. Only float32
// tensors are compressed; every other dtype travels Raw, as its own bytes:
// the caller decides per tensor. Wire bytes are little-endian. Every function
// may run concurrently with any other (chunks encoded on several threads).
#pragma once

#include <cstddef>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

namespace flare::transport {

enum class WireEncoding {
  Raw,            // float32 as it is: exact
  BFloat16,       // 2 bytes: float32's range, 8 significant bits
  Float16,        // 2 bytes: |x| <= 65504, 11 significant bits
  Int8Blockwise,  // per block of kInt8BlockElements: a float32 scale, then int8 values
};

// Documented error of each encoding, for a finite x (max_abs_error computes it):
// - Raw: none.
// - BFloat16: round to nearest even; relative 2^-8 for |x| >= 2^-126 (a normal
//   float32), absolute 2^-134 below. A finite value rounding past bfloat16's
//   largest (|x| >= 0x1.ffp127, about 3.396e38: float32's top 0.2%) is refused.
// - Float16: round to nearest even, subnormals kept; relative 2^-11 for |x|
//   in [2^-14, 65504], absolute 2^-25 below 2^-14 (smaller values become 0).
//   A finite value rounding past 65504 (|x| >= 65520) is refused
//   (WireRangeError): saturating would change the model silently.
// - Int8Blockwise: per block, scale = absmax / 127 and each value the nearest
//   (ties to even) multiple of it in [-127, 127] * scale: absolute error
//   absmax / 254, plus float32 rounding below absmax * 2^-21 + 2^-142.
// NaN and infinities stay non-finite (for int8, the whole block decodes to
// NaN), so the receiver's check for finite values still rejects them.

// Values per int8 block. 256: the scale costs 1.6% on top of 1 byte a value
// (64 would cost 6.25% for a tighter bound), and one outlier coarsens only
// its 255 neighbours; a multiple of every vector width.
inline constexpr size_t kInt8BlockElements = 256;

// The job spec's [server] wire_dtype ("float32", "bfloat16", "float16",
// "int8") and back; throws std::invalid_argument naming the valid values.
WireEncoding wire_encoding_for_dtype(std::string_view wire_dtype);
std::string_view wire_dtype_name(WireEncoding encoding);

// Wire bytes of `num_elements` float32 values.
size_t encoded_bytes(WireEncoding encoding, size_t num_elements);

// The most elements, a multiple of kInt8BlockElements (for every encoding,
// so that chunks start on a block), whose encoding fits `max_chunk_bytes`.
// Throws std::invalid_argument when not even one block fits.
size_t chunk_elements(WireEncoding encoding, size_t max_chunk_bytes);

// A finite value the encoding cannot carry (see above). `index` counts from
// the start of the piece given to encode.
class WireRangeError : public std::range_error {
 public:
  WireRangeError(const std::string& message, size_t index, float value)
      : std::range_error(message), index_(index), value_(value) {}
  size_t index() const { return index_; }
  float value() const { return value_; }

 private:
  size_t index_;
  float value_;
};

// Writes encoded_bytes(encoding, n) bytes of `src[0, n)` to `out`. A tensor
// encoded in pieces that start at multiples of kInt8BlockElements gives the
// same bytes as encoded at once; decode each piece with its own n. Throws
// WireRangeError (nothing useful is left in `out` then).
void encode(WireEncoding encoding, const float* src, size_t n, std::byte* out);

// Reads exactly encoded_bytes(encoding, n) bytes from `in` into `out[0, n)`.
// Any bytes decode: a hostile scale or NaN pattern yields non-finite values,
// which the receiver's finite check rejects.
void decode(WireEncoding encoding, const std::byte* in, size_t n, float* out);

// The same, checking that the byte count matches the element count
// (std::invalid_argument naming both otherwise).
void encode(WireEncoding encoding, std::span<const float> src, std::span<std::byte> out);
void decode(WireEncoding encoding, std::span<const std::byte> in, std::span<float> out);

// The documented bound on |decode(encode(x)) - x| for a finite x that the
// encoding accepts; `block_absmax` is the largest |value| of x's int8 block
// (ignored by the other encodings).
double max_abs_error(WireEncoding encoding, float x, float block_absmax = 0);

}  // namespace flare::transport
