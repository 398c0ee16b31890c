// Named tensors <-> protocol messages. Copies: the wire owns its bytes.
#pragma once

#include <span>
#include <vector>

#include <flare/plugin_abi.h>

#include "tensor/owned_tensor.hpp"
#include "transport/flare.pb.h"

namespace flare::transport {

// Appends copies of `tensors` (CPU, dense) to `out`.
void encode_tensors(std::span<const flare_named_tensor> tensors,
                    google::protobuf::RepeatedPtrField<v1::Tensor>* out);

// Owned tensors from the wire; throws std::runtime_error on a size mismatch.
std::vector<tensor::OwnedTensor> decode_tensors(
    const google::protobuf::RepeatedPtrField<v1::Tensor>& in);

}  // namespace flare::transport
