#include "server/global_model.hpp"

namespace flare::server {

GlobalModel::GlobalModel(int64_t model_round, std::vector<tensor::OwnedTensor> tensors)
    : model_round_(model_round), tensors_(std::move(tensors)) {
  views_.reserve(tensors_.size());
  for (const auto& t : tensors_) views_.push_back(t.view());
}

}  // namespace flare::server
