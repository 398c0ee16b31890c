#include "tensor/owned_tensor.hpp"

#include <unistd.h>

#include <cstdint>
#include <cstring>

#include <flare/plugin.hpp>

namespace flare::tensor {

std::uint64_t machine_memory_bytes() {
  static const std::uint64_t bytes = [] {
    const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
    return pages > 0 && page > 0
               ? static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page)
               : UINT64_MAX;
  }();
  return bytes;
}

flare_named_tensor OwnedTensor::view() {
  return flare::tensor_view(name.c_str(), data.data(), dtype, shape.data(),
                            static_cast<int32_t>(shape.size()));
}

flare_named_tensor OwnedTensor::view() const {
  // The C view has no const; the ABI's borrowed-view rules forbid writing through it.
  return const_cast<OwnedTensor*>(this)->view();
}

OwnedTensor copy_of(const flare_named_tensor& tensor) {
  OwnedTensor t;
  t.name = tensor.name;
  t.dtype = tensor.tensor.dtype;
  t.shape.assign(tensor.tensor.shape, tensor.tensor.shape + tensor.tensor.ndim);
  t.data.resize(num_bytes(tensor.tensor));
  if (!t.data.empty())  // an empty tensor's data may be null, which memcpy may not be given
    std::memcpy(t.data.data(),
                static_cast<const char*>(tensor.tensor.data) + tensor.tensor.byte_offset,
                t.data.size());
  return t;
}

std::vector<flare_named_tensor> views_of(std::vector<OwnedTensor>& tensors) {
  return views_of(static_cast<const std::vector<OwnedTensor>&>(tensors));
}

std::vector<flare_named_tensor> views_of(const std::vector<OwnedTensor>& tensors) {
  std::vector<flare_named_tensor> views;
  views.reserve(tensors.size());
  for (const auto& t : tensors) views.push_back(t.view());
  return views;
}

}  // namespace flare::tensor
