#include "worker/model_broadcast.hpp"

#include <cstring>
#include <stdexcept>

#include <flare/plugin.hpp>

namespace flare::worker {

namespace {

// Every tensor starts at a multiple of this (what operator new guarantees the
// buffer), so views are aligned for any dtype a plugin reads in place.
constexpr std::size_t kAlignment = 16;

std::size_t aligned(std::size_t offset) { return (offset + kAlignment - 1) / kAlignment * kAlignment; }

// FNV-1a over the layout: same names, dtypes and shapes in the same order give
// the same value on every rank.
class Fingerprint {
 public:
  void add(const void* data, std::size_t size) {
    for (std::size_t i = 0; i < size; ++i) {
      hash_ ^= static_cast<const unsigned char*>(data)[i];
      hash_ *= 1099511628211ULL;
    }
  }
  template <class T>
  void add(const T& value) {
    add(&value, sizeof value);
  }
  uint64_t value() const { return hash_; }

 private:
  uint64_t hash_ = 14695981039346656037ULL;
};

}  // namespace

FlatTensors::FlatTensors(std::span<const flare_named_tensor> tensors, bool copy_values) {
  Fingerprint fingerprint;
  std::size_t end = 0;
  for (const flare_named_tensor& t : tensors) {
    const std::string name = t.name ? t.name : "";
    if (t.tensor.device.device_type != kDLCPU || !is_row_major(t.tensor))
      throw std::runtime_error("tensor '" + name + "' is not a dense CPU tensor");
    Entry e{name, t.tensor.dtype, {t.tensor.shape, t.tensor.shape + t.tensor.ndim}, aligned(end)};
    end = e.offset + num_bytes(t.tensor);
    fingerprint.add(e.name.data(), e.name.size() + 1);
    fingerprint.add(e.dtype.code);
    fingerprint.add(e.dtype.bits);
    fingerprint.add(e.dtype.lanes);
    fingerprint.add(t.tensor.ndim);
    for (const int64_t d : e.shape) fingerprint.add(d);
    entries_.push_back(std::move(e));
  }
  fingerprint_ = fingerprint.value();
  const std::size_t fingerprint_at = aligned(end);
  buffer_.resize(fingerprint_at + sizeof fingerprint_);
  std::memcpy(buffer_.data() + fingerprint_at, &fingerprint_, sizeof fingerprint_);
  byte_count_ = static_cast<int64_t>(buffer_.size());
  if (!copy_values) return;
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    const DLTensor& t = tensors[i].tensor;
    if (num_bytes(t) == 0) continue;  // an empty tensor's data may be null
    std::memcpy(buffer_.data() + entries_[i].offset,
                static_cast<const std::byte*>(t.data) + t.byte_offset, num_bytes(t));
  }
}

std::vector<flare_named_tensor> FlatTensors::views() {
  std::vector<flare_named_tensor> out;
  out.reserve(entries_.size());
  for (Entry& e : entries_)
    out.push_back(tensor_view(e.name.c_str(), buffer_.data() + e.offset, e.dtype, e.shape.data(),
                              static_cast<int32_t>(e.shape.size())));
  return out;
}

DLTensor FlatTensors::bytes() {
  return dl_view(buffer_.data(), {kDLUInt, 8, 1}, &byte_count_, 1);
}

bool FlatTensors::layout_matches() const {
  uint64_t in_buffer = 0;
  std::memcpy(&in_buffer, buffer_.data() + buffer_.size() - sizeof in_buffer, sizeof in_buffer);
  return in_buffer == fingerprint_;
}

FlatTensors broadcast_model(host::Collectives& group, std::span<const flare_named_tensor> tensors,
                            int root) {
  FlatTensors model(tensors, /*copy_values=*/group.rank() == root);
  DLTensor bytes = model.bytes();
  group.broadcast(bytes, root);
  if (!model.layout_matches())
    throw ModelLayoutError("rank " + std::to_string(group.rank()) +
                             "'s model differs from rank " + std::to_string(root) +
                             "'s in its tensors' names, dtypes or shapes");
  return model;
}

}  // namespace flare::worker
