// One global model: made once per round (the initial model, then each
// aggregate), immutable after, and shared by everything that needs it in that
// round: every site's task, the model store, the aggregator's begin_round,
// the evaluation waiting for its figures and the RPC edge's one wire encoding.
#pragma once

#include <flare/plugin_abi.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tensor/owned_tensor.hpp"

namespace flare::server {

class GlobalModel {
 public:
  // `model_round`: rounds completed when the model was made (0 = initial).
  GlobalModel(int64_t model_round, std::vector<tensor::OwnedTensor> tensors);
  // Views point into the tensors: copying would leave them pointing at the original.
  GlobalModel(const GlobalModel&) = delete;
  GlobalModel& operator=(const GlobalModel&) = delete;

  int64_t model_round() const { return model_round_; }
  const std::vector<tensor::OwnedTensor>& tensors() const { return tensors_; }
  // Read-only views (the C view has no const), valid while the model lives.
  std::span<const flare_named_tensor> views() const { return views_; }
  // The tensors of `last`, for the next model to be written into, when
  // nothing else holds it (else empty): a big model's every round then
  // neither allocates nor faults in a model's pages, and the allocator cannot
  // strand a freed model in one thread's arena while the next grows another.
  static std::vector<tensor::OwnedTensor> recycle(std::shared_ptr<const GlobalModel> last);
  // The position of the tensor named `name`, if the model has one.
  std::optional<size_t> index_of(std::string_view name) const;
  // Why a tensor of `dtype` and `shape` is not this model's tensor at `at`
  // (" is float16, the global model's is float32"), or "" when it is.
  std::string mismatch(size_t at, DLDataType dtype, std::span<const int64_t> shape) const;

 private:
  int64_t model_round_;
  std::vector<tensor::OwnedTensor> tensors_;
  std::vector<flare_named_tensor> views_;
  std::unordered_map<std::string_view, size_t> index_;  // keys point into tensors_
};

using GlobalModelPtr = std::shared_ptr<const GlobalModel>;

}  // namespace flare::server
