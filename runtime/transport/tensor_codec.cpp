#include "transport/tensor_codec.hpp"

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

#include <flare/plugin.hpp>

namespace flare::transport {

void encode_tensors(std::span<const flare_named_tensor> tensors,
                    google::protobuf::RepeatedPtrField<v1::Tensor>* out) {
  for (const auto& t : tensors) {
    auto* msg = out->Add();
    msg->set_name(t.name);
    msg->set_dtype_code(t.tensor.dtype.code);
    msg->set_dtype_bits(t.tensor.dtype.bits);
    msg->set_dtype_lanes(t.tensor.dtype.lanes);
    for (int32_t i = 0; i < t.tensor.ndim; ++i) msg->add_shape(t.tensor.shape[i]);
    const auto* begin = static_cast<const char*>(t.tensor.data) + t.tensor.byte_offset;
    msg->set_data(begin, num_bytes(t.tensor));
  }
}

std::vector<tensor::OwnedTensor> decode_tensors(
    const google::protobuf::RepeatedPtrField<v1::Tensor>& in) {
  std::vector<tensor::OwnedTensor> out;
  out.reserve(in.size());
  for (const auto& msg : in) {
    const size_t index = out.size();
    const auto bad = [&](const std::string& problem) {
      throw MalformedTensor(index, "tensor '" + msg.name() + "' " + problem);
    };
    // DLPack's fields are narrower than the wire's: a wider value would wrap.
    if (msg.dtype_code() > UINT8_MAX || msg.dtype_bits() == 0 || msg.dtype_bits() > UINT8_MAX ||
        msg.dtype_lanes() == 0 || msg.dtype_lanes() > UINT16_MAX) {
      bad("has no valid dtype (code " + std::to_string(msg.dtype_code()) + ", bits " +
          std::to_string(msg.dtype_bits()) + ", lanes " + std::to_string(msg.dtype_lanes()) + ")");
    }
    tensor::OwnedTensor t;
    t.name = msg.name();
    t.dtype = DLDataType{static_cast<uint8_t>(msg.dtype_code()),
                         static_cast<uint8_t>(msg.dtype_bits()),
                         static_cast<uint16_t>(msg.dtype_lanes())};
    t.shape.assign(msg.shape().begin(), msg.shape().end());
    // Every element has at least one byte, so a shape that fits the bytes
    // cannot make a reader allocate more than the message carried.
    uint64_t expected = (t.dtype.bits * t.dtype.lanes + 7) / 8;
    for (int64_t d : t.shape) {
      if (d < 0 || __builtin_mul_overflow(expected, static_cast<uint64_t>(d), &expected))
        bad("has shape " + describe_shape(t.shape) + ", negative or too large");
    }
    if (msg.data().size() != expected) {
      bad("carries " + std::to_string(msg.data().size()) + " bytes, its shape " +
          describe_shape(t.shape) + " of " + describe_dtype(t.dtype) + " needs " +
          std::to_string(expected));
    }
    t.data.resize(expected);
    if (expected > 0)  // an empty tensor's buffers may be null, which memcpy may not be given
      std::memcpy(t.data.data(), msg.data().data(), expected);
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace flare::transport
