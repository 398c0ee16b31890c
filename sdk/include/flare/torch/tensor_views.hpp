// LibTorch <-> the C ABI's tensors: DLPack views of a module's state and
// checked, copying writes into it. Header-only; part of the C++ SDK.
#pragma once

#include <flare/plugin.hpp>

#include <ATen/DLConvertor.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace flare::torch_sdk {

inline DLDevice to_dl_device(const torch::Device& device) {
  if (device.is_cpu()) return DLDevice{kDLCPU, 0};
  if (device.is_cuda()) return DLDevice{kDLCUDA, device.has_index() ? device.index() : 0};
  throw Error(FLARE_ERROR_UNSUPPORTED, "device " + device.str() + " has no DLPack mapping");
}

inline torch::Device to_torch_device(const DLDevice& device) {
  switch (device.device_type) {
    case kDLCPU:
      return torch::Device(torch::kCPU);
    case kDLCUDA:
      return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(device.device_id));
    default:
      throw Error(FLARE_ERROR_UNSUPPORTED,
                  "DLPack device type " + std::to_string(static_cast<int>(device.device_type)) +
                      " is not supported");
  }
}

// The memory behind a DLTensor as a tensor, without a copy; the DLTensor's
// owner keeps the memory alive for as long as the tensor is used.
inline torch::Tensor from_dl_view(const DLTensor& t) {
  std::vector<int64_t> shape(t.shape, t.shape + t.ndim);
  const auto options =
      torch::TensorOptions().dtype(at::toScalarType(t.dtype)).device(to_torch_device(t.device));
  void* data = static_cast<char*>(t.data) + t.byte_offset;
  if (t.strides) {
    std::vector<int64_t> strides(t.strides, t.strides + t.ndim);
    return torch::from_blob(data, shape, strides, options);
  }
  return torch::from_blob(data, shape, options);
}

// A DLTensor view of a contiguous tensor. `shape` (t.dim() values) must stay
// valid as long as the view is used.
inline DLTensor to_dl_view(const torch::Tensor& t, int64_t* shape) {
  TORCH_CHECK(t.is_contiguous(), "DLPack views need a contiguous tensor");
  DLTensor dl{};
  dl.data = t.data_ptr();
  dl.device = to_dl_device(t.device());
  dl.ndim = static_cast<int32_t>(t.dim());
  dl.dtype = at::getDLDataType(t);
  dl.shape = shape;
  dl.strides = nullptr;
  dl.byte_offset = 0;
  return dl;
}

// A module's parameters then buffers (recursively, in registration order, so
// the order is the same on every rank and call), seen as named DLPack views.
class ModuleState {
 public:
  ModuleState() = default;
  explicit ModuleState(const torch::nn::Module& module) {
    for (const auto& item : module.named_parameters(/*recurse=*/true)) add(item.key(), item.value());
    for (const auto& item : module.named_buffers(/*recurse=*/true)) add(item.key(), item.value());
  }

  // Named tensors that are no module's (e.g. SCAFFOLD's control variates).
  explicit ModuleState(std::vector<std::pair<std::string, torch::Tensor>> named) {
    for (auto& [name, tensor] : named) add(name, tensor);
  }

  std::size_t size() const { return entries_.size(); }
  const std::vector<torch::Tensor>& tensors() const { return tensors_; }

  // Views into the live tensors (a contiguous copy for a non-contiguous one),
  // valid until the next call or until the module is moved or destroyed.
  // Weights cross to the host in host memory, which the host serialises: a
  // model on a GPU is copied to the CPU here.
  std::vector<flare_named_tensor> views() {
    std::vector<flare_named_tensor> out;
    out.reserve(entries_.size());
    for (std::size_t i = 0; i < entries_.size(); ++i) {
      Entry& e = entries_[i];
      e.exported = tensors_[i].detach().to(torch::kCPU).contiguous();
      DLTensor dl = to_dl_view(e.exported, e.shape.data());
      out.push_back(tensor_view(e.name.c_str(), dl.data, dl.dtype, e.shape.data(), dl.ndim,
                                dl.device));
    }
    return out;
  }

  // Copies `incoming` into the module. Every name must appear exactly once with
  // the same shape and dtype; all are checked before anything is written, so a
  // rejected call leaves the model as it was. Throws FLARE_ERROR_INVALID_ARGUMENT
  // naming the offending tensor.
  void copy_from(std::span<const flare_named_tensor> incoming) {
    std::vector<const DLTensor*> source(entries_.size(), nullptr);
    for (const flare_named_tensor& w : incoming) {
      const std::string name = w.name ? w.name : "";
      const auto it = index_.find(name);
      if (it == index_.end())
        throw Error(FLARE_ERROR_INVALID_ARGUMENT, "unknown tensor '" + name + "' in the weights");
      if (source[it->second])
        throw Error(FLARE_ERROR_INVALID_ARGUMENT, "tensor '" + name + "' given twice");
      check_matches(entries_[it->second], w.tensor);
      source[it->second] = &w.tensor;
    }
    for (std::size_t i = 0; i < entries_.size(); ++i)
      if (!source[i])
        throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                    "tensor '" + entries_[i].name + "' is missing from the weights");
    torch::NoGradGuard no_grad;
    for (std::size_t i = 0; i < entries_.size(); ++i) tensors_[i].copy_(from_dl_view(*source[i]));
  }

 private:
  struct Entry {
    std::string name;
    std::vector<int64_t> shape;
    DLDataType dtype;
    torch::Tensor exported;
  };

  void add(const std::string& name, const torch::Tensor& t) {
    index_.emplace(name, entries_.size());
    entries_.push_back(Entry{name, t.sizes().vec(), at::getDLDataType(t), {}});
    tensors_.push_back(t);
  }

  static void check_matches(const Entry& e, const DLTensor& t) {
    const bool same_shape =
        t.ndim == static_cast<int32_t>(e.shape.size()) &&
        std::equal(e.shape.begin(), e.shape.end(), t.shape);
    if (!same_shape)
      throw Error(FLARE_ERROR_INVALID_ARGUMENT,
                  "tensor '" + e.name + "': expected shape " + describe_shape(e.shape) +
                      ", got " + describe_shape({t.shape, static_cast<size_t>(t.ndim)}));
    if (t.dtype.code != e.dtype.code || t.dtype.bits != e.dtype.bits ||
        t.dtype.lanes != e.dtype.lanes)
      throw Error(FLARE_ERROR_INVALID_ARGUMENT, "tensor '" + e.name + "': expected dtype " +
                                                    describe_dtype(e.dtype) + ", got " +
                                                    describe_dtype(t.dtype));
    if (!t.data && num_elements(t) > 0)
      throw Error(FLARE_ERROR_INVALID_ARGUMENT, "tensor '" + e.name + "' has no data");
  }

  std::vector<Entry> entries_;
  std::vector<torch::Tensor> tensors_;
  std::unordered_map<std::string, std::size_t> index_;
};

}  // namespace flare::torch_sdk
