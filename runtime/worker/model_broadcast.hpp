// The global model from rank 0 to the other ranks of a worker group in one
// broadcast: every tensor laid out back to back in one byte buffer. One
// tensor at a time, a model of n tensors cost n collectives, each a round
// trip through the group.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include <flare/plugin_abi.h>

#include "plugin_host/collectives.hpp"

namespace flare::worker {

// Named tensors stored back to back in one byte buffer, followed by a
// fingerprint of their layout (names, dtypes, shapes).
class FlatTensors {
 public:
  // The layout of `tensors` (dense CPU views); their values too when
  // `copy_values`, else zeros.
  FlatTensors(std::span<const flare_named_tensor> tensors, bool copy_values);
  FlatTensors(FlatTensors&&) noexcept = default;
  FlatTensors& operator=(FlatTensors&&) noexcept = default;

  // Views into the buffer, valid while this object lives.
  std::vector<flare_named_tensor> views();
  // The whole buffer, fingerprint included, as one uint8 tensor.
  DLTensor bytes();
  // Whether the fingerprint in the buffer is this layout's (it is until a
  // broadcast brings another rank's buffer in).
  bool layout_matches() const;

 private:
  struct Entry {
    std::string name;
    DLDataType dtype;
    std::vector<int64_t> shape;
    std::size_t offset;
  };
  std::vector<Entry> entries_;
  std::vector<std::byte> buffer_;
  uint64_t fingerprint_ = 0;
  int64_t byte_count_ = 0;  // the shape of bytes()
};

// This rank's tensors are not laid out as the broadcasting rank's.
class ModelLayoutError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Rank `root`'s values of `tensors` on every rank, in one broadcast; returned
// as a FlatTensors holding them. `tensors` must have the same names, dtypes
// and shapes, in the same order, on every rank; a rank whose layout differs
// from root's throws ModelLayoutError. Collective.
FlatTensors broadcast_model(host::Collectives& group, std::span<const flare_named_tensor> tensors,
                            int root);

}  // namespace flare::worker
