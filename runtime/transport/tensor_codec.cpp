#include "transport/tensor_codec.hpp"

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
    tensor::OwnedTensor t;
    t.name = msg.name();
    t.dtype = DLDataType{static_cast<uint8_t>(msg.dtype_code()),
                         static_cast<uint8_t>(msg.dtype_bits()),
                         static_cast<uint16_t>(msg.dtype_lanes())};
    t.shape.assign(msg.shape().begin(), msg.shape().end());
    size_t expected = (t.dtype.bits * t.dtype.lanes + 7) / 8;
    for (int64_t d : t.shape) expected *= static_cast<size_t>(d);
    if (msg.data().size() != expected) {
      throw std::runtime_error("tensor '" + t.name + "' carries " +
                               std::to_string(msg.data().size()) + " bytes, its shape needs " +
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
