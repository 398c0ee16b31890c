#include "server/global_model.hpp"

#include <flare/plugin.hpp>

#include <map>
#include <set>

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

std::string GlobalModel::layout_mismatch(std::span<const tensor::OwnedTensor> tensors) const {
  std::map<std::string_view, const tensor::OwnedTensor*> mine;
  for (const auto& t : tensors_) mine[t.name] = &t;
  std::set<std::string_view> seen;
  for (const auto& t : tensors) {
    const std::string tensor = "tensor '" + t.name + "'";
    const auto it = mine.find(t.name);
    if (it == mine.end()) return tensor + " is not in the global model";
    if (!seen.insert(t.name).second) return tensor + " appears twice";
    const tensor::OwnedTensor& expected = *it->second;
    if (t.dtype.code != expected.dtype.code || t.dtype.bits != expected.dtype.bits ||
        t.dtype.lanes != expected.dtype.lanes) {
      return tensor + " is " + describe_dtype(t.dtype) + ", the global model's is " +
             describe_dtype(expected.dtype);
    }
    if (t.shape != expected.shape) {
      return tensor + " has shape " + describe_shape(t.shape) + ", the global model's is " +
             describe_shape(expected.shape);
    }
  }
  for (const auto& entry : mine) {
    if (!seen.contains(entry.first))
      return "tensor '" + std::string(entry.first) + "' of the global model is missing";
  }
  return {};
}

}  // namespace flare::server
