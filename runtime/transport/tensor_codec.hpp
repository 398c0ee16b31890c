// Named tensors <-> protocol messages. Copies: the wire owns its bytes.
#pragma once

#include <span>
#include <stdexcept>
#include <vector>

#include <flare/plugin_abi.h>

#include "tensor/owned_tensor.hpp"
#include "transport/flare.pb.h"

namespace flare::transport {

// Appends copies of `tensors` (CPU, dense) to `out`.
void encode_tensors(std::span<const flare_named_tensor> tensors,
                    google::protobuf::RepeatedPtrField<v1::Tensor>* out);

// A tensor message that describes no tensor: a negative or overflowing shape,
// a dtype of no bits or lanes, or bytes that do not fit its shape.
class MalformedTensor : public std::runtime_error {
 public:
  MalformedTensor(size_t index, const std::string& problem)
      : std::runtime_error(problem), index_(index) {}
  size_t index() const { return index_; }  // its position in the list

 private:
  size_t index_;
};

// Owned tensors from the wire, each checked before anything is allocated for
// it (the wire is untrusted); throws MalformedTensor.
std::vector<tensor::OwnedTensor> decode_tensors(
    const google::protobuf::RepeatedPtrField<v1::Tensor>& in);

}  // namespace flare::transport
