// libFuzzer target: bytes -> validated model file (storage::read_safetensors,
// the parser behind load_safetensors). StorageError is the reader's answer to
// a bad file; anything else escaping, a sanitizer report, a hang, or a result
// that breaks the reader's promises (every tensor's bytes = its shape x dtype,
// all of them tiling the buffer after the header) is a finding.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>

#include "storage/safetensors.hpp"

namespace {

[[noreturn]] void broken_promise(const char* what) {
  std::fprintf(stderr, "read_safetensors accepted a file but %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace flare::storage;
  std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
  SafetensorsFile model;
  try {
    model = read_safetensors(in, size, "fuzz.safetensors");
  } catch (const StorageError&) {
    return 0;
  }
  std::uint64_t header_length = 0;
  std::memcpy(&header_length, data, sizeof header_length);  // accepted: size >= 8
  std::uint64_t tensor_bytes = 0;
  for (const flare::tensor::OwnedTensor& tensor : model.tensors) {
    std::uint64_t bytes = tensor.dtype.bits / 8;
    for (const std::int64_t dim : tensor.shape) {
      if (dim < 0) broken_promise("a dimension is negative");
      if (__builtin_mul_overflow(bytes, static_cast<std::uint64_t>(dim), &bytes))
        broken_promise("a tensor's shape overflows");
    }
    if (bytes != tensor.data.size()) broken_promise("a tensor's bytes differ from its shape");
    tensor_bytes += bytes;
  }
  if (tensor_bytes != size - 8 - header_length)
    broken_promise("the tensors do not cover the buffer after the header");
  return 0;
}
