// Named tensors <-> protocol messages. Copies: the wire owns its bytes.
#pragma once

#include <span>
#include <vector>

#include <flare/plugin_abi.h>

#include "storage/safetensors.hpp"
#include "transport/flare.pb.h"

namespace flare::transport {

using storage::StoredTensor;

// Appends copies of `tensors` (CPU, dense) to `out`.
void encode_tensors(std::span<const flare_named_tensor> tensors,
                    google::protobuf::RepeatedPtrField<v1::Tensor>* out);

// Owned tensors from the wire; throws std::runtime_error on a size mismatch.
std::vector<StoredTensor> decode_tensors(const google::protobuf::RepeatedPtrField<v1::Tensor>& in);

// An owned copy of a dense CPU view.
StoredTensor copy_of(const flare_named_tensor& tensor);

// Views over owned tensors (valid while `tensors` lives and is not resized).
std::vector<flare_named_tensor> views_of(std::vector<StoredTensor>& tensors);

}  // namespace flare::transport
