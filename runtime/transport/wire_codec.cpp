#include "transport/wire_codec.hpp"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>

#include "transport/wire_kernels.hpp"

namespace flare::transport {
namespace {

constexpr std::string_view kDtypeNames[] = {"float32", "bfloat16", "float16", "int8"};

size_t wire_bytes_per_block(WireEncoding encoding) {
  switch (encoding) {
    case WireEncoding::Raw: return 4 * kInt8BlockElements;
    case WireEncoding::BFloat16:
    case WireEncoding::Float16: return 2 * kInt8BlockElements;
    case WireEncoding::Int8Blockwise: return sizeof(float) + kInt8BlockElements;
  }
  throw std::invalid_argument("unknown wire encoding " + std::to_string(static_cast<int>(encoding)));
}

std::string number_text(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.9g", value);
  return text;
}

[[noreturn]] void refuse(WireEncoding encoding, const float* src, size_t index) {
  const bool half = encoding == WireEncoding::Float16;
  const double largest = half ? 65504.0 : 0x1.fep127;
  throw WireRangeError(std::string(wire_dtype_name(encoding)) + " cannot carry " +
                           number_text(src[index]) + " (value " + std::to_string(index) +
                           " of the piece encoded): its largest magnitude is " +
                           number_text(largest) + "; wire_dtype = " +
                           (half ? "\"bfloat16\" or \"int8\"" : "\"float32\"") + " carries it",
                       index, src[index]);
}

void check_bytes(WireEncoding encoding, size_t values, size_t bytes) {
  if (bytes != encoded_bytes(encoding, values))
    throw std::invalid_argument(std::string(wire_dtype_name(encoding)) + " wire bytes of " +
                                std::to_string(values) + " values are " +
                                std::to_string(encoded_bytes(encoding, values)) + ", given " +
                                std::to_string(bytes));
}

}  // namespace

WireEncoding wire_encoding_for_dtype(std::string_view wire_dtype) {
  for (size_t i = 0; i < std::size(kDtypeNames); ++i)
    if (wire_dtype == kDtypeNames[i]) return static_cast<WireEncoding>(i);
  throw std::invalid_argument("wire_dtype \"" + std::string(wire_dtype) +
                              "\" is none of \"float32\", \"bfloat16\", \"float16\", \"int8\"");
}

std::string_view wire_dtype_name(WireEncoding encoding) {
  const auto index = static_cast<size_t>(encoding);
  return index < std::size(kDtypeNames) ? kDtypeNames[index] : "unknown";
}

size_t encoded_bytes(WireEncoding encoding, size_t num_elements) {
  if (num_elements > std::numeric_limits<size_t>::max() / 8)
    throw std::length_error(std::to_string(num_elements) + " values do not fit a buffer");
  switch (encoding) {
    case WireEncoding::Raw: return 4 * num_elements;
    case WireEncoding::BFloat16:
    case WireEncoding::Float16: return 2 * num_elements;
    case WireEncoding::Int8Blockwise: {
      const size_t blocks = (num_elements + kInt8BlockElements - 1) / kInt8BlockElements;
      return num_elements + sizeof(float) * blocks;
    }
  }
  return wire_bytes_per_block(encoding);  // throws for an unknown encoding
}

size_t chunk_elements(WireEncoding encoding, size_t max_chunk_bytes) {
  const size_t block_bytes = wire_bytes_per_block(encoding);
  if (max_chunk_bytes < block_bytes)
    throw std::invalid_argument("a " + std::string(wire_dtype_name(encoding)) + " chunk of " +
                                std::to_string(max_chunk_bytes) + " bytes holds no block of " +
                                std::to_string(kInt8BlockElements) + " values (" +
                                std::to_string(block_bytes) + " bytes)");
  return max_chunk_bytes / block_bytes * kInt8BlockElements;
}

void encode(WireEncoding encoding, const float* src, size_t n, std::byte* out) {
  if (n == 0) return;  // an empty tensor's buffers may be null
  size_t carried = n;
  switch (encoding) {
    case WireEncoding::Raw: std::memcpy(out, src, encoded_bytes(encoding, n)); return;
    case WireEncoding::BFloat16: carried = wire_kernels::encode_bfloat16(src, n, out); break;
    case WireEncoding::Float16:
      carried = wire_kernels::have_f16c() ? wire_kernels::encode_float16_f16c(src, n, out)
                                          : wire_kernels::encode_float16_portable(src, n, out);
      break;
    case WireEncoding::Int8Blockwise: wire_kernels::encode_int8_blockwise(src, n, out); return;
    default: wire_bytes_per_block(encoding);  // throws for an unknown encoding
  }
  if (carried < n) refuse(encoding, src, carried);
}

void decode(WireEncoding encoding, const std::byte* in, size_t n, float* out) {
  if (n == 0) return;
  switch (encoding) {
    case WireEncoding::Raw: std::memcpy(out, in, encoded_bytes(encoding, n)); return;
    case WireEncoding::BFloat16: wire_kernels::decode_bfloat16(in, n, out); return;
    case WireEncoding::Float16:
      if (wire_kernels::have_f16c())
        wire_kernels::decode_float16_f16c(in, n, out);
      else
        wire_kernels::decode_float16_portable(in, n, out);
      return;
    case WireEncoding::Int8Blockwise: wire_kernels::decode_int8_blockwise(in, n, out); return;
  }
  wire_bytes_per_block(encoding);  // throws for an unknown encoding
}

void encode(WireEncoding encoding, std::span<const float> src, std::span<std::byte> out) {
  check_bytes(encoding, src.size(), out.size());
  encode(encoding, src.data(), src.size(), out.data());
}

void decode(WireEncoding encoding, std::span<const std::byte> in, std::span<float> out) {
  check_bytes(encoding, out.size(), in.size());
  decode(encoding, in.data(), out.size(), out.data());
}

double max_abs_error(WireEncoding encoding, float x, float block_absmax) {
  const double magnitude = std::abs(static_cast<double>(x));
  switch (encoding) {
    case WireEncoding::Raw: return 0;
    // Half a unit in the last place: 8 and 11 significant bits, fixed
    // spacing in the subnormal ranges.
    case WireEncoding::BFloat16: return magnitude >= 0x1.0p-126 ? magnitude * 0x1.0p-8 : 0x1.0p-134;
    case WireEncoding::Float16: return magnitude >= 0x1.0p-14 ? magnitude * 0x1.0p-11 : 0x1.0p-25;
    case WireEncoding::Int8Blockwise: {
      const double absmax = std::abs(static_cast<double>(block_absmax));
      return absmax / 254 + absmax * 0x1.0p-21 + 0x1.0p-142;
    }
  }
  return static_cast<double>(wire_bytes_per_block(encoding));  // throws for an unknown encoding
}

}  // namespace flare::transport
