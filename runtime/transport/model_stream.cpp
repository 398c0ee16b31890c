#include "transport/model_stream.hpp"

#include <algorithm>
#include <cstring>

#include <flare/plugin.hpp>

#include "transport/wire_codec.hpp"

namespace flare::transport {

namespace {

constexpr size_t kMaxDimensions = 64;

bool is_float32(DLDataType t) { return t.code == kDLFloat && t.bits == 32 && t.lanes == 1; }


WireEncoding codec_of(v1::WireEncoding encoding) {
  switch (encoding) {
    case v1::BFLOAT16: return WireEncoding::BFloat16;
    case v1::FLOAT16: return WireEncoding::Float16;
    case v1::INT8_BLOCKWISE: return WireEncoding::Int8Blockwise;
    default: return WireEncoding::Raw;
  }
}

// How many elements each data part of a tensor carries (the last: the rest).
// Fixed by the encoding and dtype alone, so both sides agree on every part's
// size and the reader refuses any other.
uint64_t part_elements(v1::WireEncoding encoding, size_t element_bytes) {
  if (encoding == v1::RAW) return std::max<uint64_t>(1, kChunkBytes / element_bytes);
  return chunk_elements(codec_of(encoding), kChunkBytes);
}

size_t wire_size(v1::WireEncoding encoding, size_t element_bytes, uint64_t n) {
  if (encoding == v1::RAW) return n * element_bytes;
  return encoded_bytes(codec_of(encoding), n);
}

bool supported(v1::WireEncoding encoding) {
  return encoding == v1::RAW || encoding == v1::BFLOAT16 || encoding == v1::FLOAT16 ||
         encoding == v1::INT8_BLOCKWISE;
}

const char* encoding_name(int encoding) {
  return v1::WireEncoding_IsValid(encoding)
             ? v1::WireEncoding_Name(static_cast<v1::WireEncoding>(encoding)).c_str()
             : "unknown";
}

}  // namespace

v1::WireEncoding wire_encoding_for(std::string_view wire_dtype) {
  switch (wire_encoding_for_dtype(wire_dtype)) {
    case WireEncoding::BFloat16: return v1::BFLOAT16;
    case WireEncoding::Float16: return v1::FLOAT16;
    case WireEncoding::Int8Blockwise: return v1::INT8_BLOCKWISE;
    case WireEncoding::Raw: break;
  }
  return v1::RAW;
}

flare_named_tensor TensorDesc::view() const {
  flare_named_tensor v{};
  v.struct_size = sizeof(v);
  v.name = name.c_str();
  v.tensor.device = {kDLCPU, 0};
  v.tensor.ndim = static_cast<int32_t>(shape.size());
  v.tensor.dtype = dtype;
  v.tensor.shape = const_cast<int64_t*>(shape.data());
  return v;
}

ModelStreamReader::ModelStreamReader(TensorSink& sink, size_t expected_tensors)
    : sink_(sink), expected_(expected_tensors) {}

void ModelStreamReader::malformed(const std::string& problem) const {
  const size_t index = index_ == 0 ? 0 : index_ - 1;
  throw MalformedTensor(index, "tensor '" + current_.name + "' " + problem);
}

uint64_t ModelStreamReader::next_part_elements() const {
  return std::min(part_elements(current_.encoding, current_.element_bytes),
                  current_.num_elements - received_);
}

void ModelStreamReader::tensor(const v1::TensorHeader& h) {
  if (index_ > 0 && received_ != current_.num_elements) {
    malformed("ended after " + std::to_string(received_) + " of its " +
              std::to_string(current_.num_elements) + " elements");
  }
  if (index_ == expected_) {
    throw MalformedTensor(index_, "tensor '" + h.name() + "' is one more than the " +
                                      std::to_string(expected_) + " announced");
  }
  ++index_;
  received_ = 0;
  current_ = TensorDesc{};
  current_.name = h.name();
  // DLPack's fields are narrower than the wire's: a wider value would wrap.
  if (h.dtype_code() > UINT8_MAX || h.dtype_bits() == 0 || h.dtype_bits() > UINT8_MAX ||
      h.dtype_lanes() == 0 || h.dtype_lanes() > UINT16_MAX) {
    malformed("has no valid dtype (code " + std::to_string(h.dtype_code()) + ", bits " +
              std::to_string(h.dtype_bits()) + ", lanes " + std::to_string(h.dtype_lanes()) + ")");
  }
  current_.dtype = DLDataType{static_cast<uint8_t>(h.dtype_code()),
                              static_cast<uint8_t>(h.dtype_bits()),
                              static_cast<uint16_t>(h.dtype_lanes())};
  current_.element_bytes = element_bytes(current_.dtype);
  current_.shape.assign(h.shape().begin(), h.shape().end());
  if (current_.shape.size() > kMaxDimensions)
    malformed("has " + std::to_string(current_.shape.size()) + " dimensions");
  uint64_t elements = 1, bytes = 0;
  for (int64_t d : current_.shape) {
    if (d < 0 || __builtin_mul_overflow(elements, static_cast<uint64_t>(d), &elements))
      malformed("has shape " + describe_shape(current_.shape) + ", negative or too large");
  }
  if (__builtin_mul_overflow(elements, current_.element_bytes, &bytes) ||
      bytes > tensor::machine_memory_bytes()) {
    malformed("has shape " + describe_shape(current_.shape) + " of " +
              describe_dtype(current_.dtype) + ", more than this machine's memory");
  }
  current_.num_elements = elements;
  if (!v1::WireEncoding_IsValid(h.encoding()) || !supported(h.encoding()))
    malformed("comes in encoding " + std::to_string(h.encoding()) + ", which this build cannot read");
  current_.encoding = h.encoding();
  if (current_.encoding != v1::RAW && !is_float32(current_.dtype)) {
    malformed("is " + describe_dtype(current_.dtype) + " in encoding " +
              encoding_name(current_.encoding) + ": only float32 tensors are re-encoded");
  }
  current_.aux = h.aux();
  sink_.begin_tensor(index_ - 1, current_);
}

void ModelStreamReader::data(const std::string& bytes) {
  if (index_ == 0) throw MalformedTensor(0, "data came before any tensor header");
  if (received_ == current_.num_elements)
    malformed("has more data than its " + std::to_string(current_.num_elements) + " elements");
  const uint64_t n = next_part_elements();
  const size_t expected = wire_size(current_.encoding, current_.element_bytes, n);
  if (bytes.size() != expected) {
    malformed("has a data part of " + std::to_string(bytes.size()) + " bytes at element " +
              std::to_string(received_) + "; " + std::to_string(n) + " elements of " +
              describe_dtype(current_.dtype) + " in encoding " +
              encoding_name(current_.encoding) + " take " + std::to_string(expected));
  }
  const auto* raw = reinterpret_cast<const std::byte*>(bytes.data());
  if (current_.encoding != v1::RAW) {
    decoded_.resize(n * sizeof(float));
    decode(codec_of(current_.encoding), raw, n, reinterpret_cast<float*>(decoded_.data()));
    raw = decoded_.data();
  }
  sink_.piece(index_ - 1, received_, n, raw);
  received_ += n;
}

void ModelStreamReader::finish() {
  if (index_ > 0 && received_ != current_.num_elements) {
    malformed("ended after " + std::to_string(received_) + " of its " +
              std::to_string(current_.num_elements) + " elements");
  }
  if (index_ != expected_) {
    throw MalformedTensor(index_, "the stream ended after " + std::to_string(index_) + " of the " +
                                      std::to_string(expected_) + " tensors announced");
  }
}

uint64_t count_parts(std::span<const flare_named_tensor> tensors, v1::WireEncoding encoding) {
  uint64_t parts = 0;
  for (const auto& t : tensors) {
    const v1::WireEncoding enc = is_float32(t.tensor.dtype) ? encoding : v1::RAW;
    const uint64_t per_part = part_elements(enc, element_bytes(t.tensor.dtype));
    const auto total = static_cast<uint64_t>(num_elements(t.tensor));
    parts += 1 + (total + per_part - 1) / per_part;
  }
  return parts;
}

bool write_tensors(std::span<const flare_named_tensor> tensors, bool aux,
                   v1::WireEncoding encoding, const PartEmitter& emit, uint64_t* skip_parts) {
  v1::TensorHeader header;
  std::vector<std::byte> encoded;  // one part, for re-encoded tensors
  uint64_t no_skip = 0;
  uint64_t& skip = skip_parts ? *skip_parts : no_skip;
  for (const auto& t : tensors) {
    const DLDataType dtype = t.tensor.dtype;
    const v1::WireEncoding enc = is_float32(dtype) ? encoding : v1::RAW;
    const bool skip_header = skip > 0;
    if (skip_header) --skip;
    header.Clear();
    header.set_name(t.name);
    header.set_dtype_code(dtype.code);
    header.set_dtype_bits(dtype.bits);
    header.set_dtype_lanes(dtype.lanes);
    for (int32_t i = 0; i < t.tensor.ndim; ++i) header.add_shape(t.tensor.shape[i]);
    header.set_encoding(enc);
    header.set_aux(aux);
    if (!skip_header && !emit(&header, {})) return false;
    const size_t bytes_each = element_bytes(dtype);
    const auto total = static_cast<uint64_t>(num_elements(t.tensor));
    const uint64_t per_part = part_elements(enc, bytes_each);
    const auto* values = static_cast<const std::byte*>(t.tensor.data) + t.tensor.byte_offset;
    for (uint64_t at = 0; at < total; at += per_part) {
      if (skip > 0) {
        --skip;
        continue;
      }
      const uint64_t n = std::min(per_part, total - at);
      const std::byte* piece = values + at * bytes_each;
      if (enc == v1::RAW) {
        if (!emit(nullptr, {piece, n * bytes_each})) return false;
        continue;
      }
      encoded.resize(wire_size(enc, bytes_each, n));
      try {
        encode(codec_of(enc), reinterpret_cast<const float*>(piece), n, encoded.data());
      } catch (const WireRangeError& e) {
        throw std::range_error("tensor '" + std::string(t.name) + "' element " +
                               std::to_string(at + e.index()) + " cannot travel as " +
                               encoding_name(enc) + " (server.wire_dtype): " + e.what());
      }
      if (!emit(nullptr, encoded)) return false;
    }
  }
  return true;
}

void OwnedTensorsSink::begin_tensor(size_t index, const TensorDesc& desc) {
  tensor::OwnedTensor t;
  t.name = desc.name;
  t.dtype = desc.dtype;
  t.shape = desc.shape;
  // Sized from a checked header; filled as the pieces come.
  t.data.resize(desc.num_elements * desc.element_bytes);
  tensors_.push_back(std::move(t));
  element_bytes_.push_back(desc.element_bytes);
  (void)index;
}

void OwnedTensorsSink::piece(size_t index, uint64_t element_offset, uint64_t n,
                             const std::byte* data) {
  const size_t eb = element_bytes_.at(index);
  std::memcpy(tensors_.at(index).data.data() + element_offset * eb, data, n * eb);
}

}  // namespace flare::transport
