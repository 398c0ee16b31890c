#include "server/global_model.hpp"

#include <flare/plugin.hpp>

#include <algorithm>

namespace flare::server {

GlobalModel::GlobalModel(int64_t model_round, std::vector<tensor::OwnedTensor> tensors)
    : model_round_(model_round), tensors_(std::move(tensors)) {
  views_.reserve(tensors_.size());
  for (const auto& t : tensors_) {
    index_.emplace(t.name, views_.size());
    views_.push_back(t.view());
  }
}

std::vector<tensor::OwnedTensor> GlobalModel::recycle(std::shared_ptr<const GlobalModel> last) {
  // Only the caller's reference is left: no one can see the model change.
  if (!last || last.use_count() != 1) return {};
  return std::move(const_cast<GlobalModel&>(*last).tensors_);
}

std::optional<size_t> GlobalModel::index_of(std::string_view name) const {
  const auto it = index_.find(name);
  if (it == index_.end()) return std::nullopt;
  return it->second;
}

std::string GlobalModel::mismatch(size_t at, DLDataType dtype,
                                  std::span<const int64_t> shape) const {
  const tensor::OwnedTensor& expected = tensors_.at(at);
  if (dtype.code != expected.dtype.code || dtype.bits != expected.dtype.bits ||
      dtype.lanes != expected.dtype.lanes) {
    return " is " + describe_dtype(dtype) + ", the global model's is " +
           describe_dtype(expected.dtype);
  }
  if (!std::ranges::equal(shape, expected.shape)) {
    return " has shape " + describe_shape(shape) + ", the global model's is " +
           describe_shape(expected.shape);
  }
  return {};
}

}  // namespace flare::server
