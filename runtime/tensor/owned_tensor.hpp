// A named tensor that owns its bytes: what the host holds between receiving a
// model (from the wire, a file or a plugin) and handing it on. It knows no file
// format and no protocol, so the transport, the server and the worker share it
// without depending on storage; safetensors and the tensor codec read and write it.
#pragma once

#include <flare/plugin_abi.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace flare::tensor {

// Dense, row-major, on the CPU.
struct OwnedTensor {
  std::string name;
  DLDataType dtype{};
  std::vector<std::int64_t> shape;
  std::vector<std::byte> data;

  // A CPU view of this tensor, valid while the OwnedTensor lives unchanged.
  flare_named_tensor view();
  flare_named_tensor view() const;  // same; the receiver must not write through it
};

// An owned copy of a dense CPU view.
OwnedTensor copy_of(const flare_named_tensor& tensor);

// This machine's physical memory in bytes: a tensor claiming more (from the
// wire or a plugin) is garbage, refused before anything is allocated.
std::uint64_t machine_memory_bytes();

// Views over owned tensors (valid while `tensors` lives and is not resized).
std::vector<flare_named_tensor> views_of(std::vector<OwnedTensor>& tensors);
// The same, read-only: the receiver must not write through them.
std::vector<flare_named_tensor> views_of(const std::vector<OwnedTensor>& tensors);

}  // namespace flare::tensor
