#include "plugin_host/site_update.hpp"

namespace flare::host {

namespace {

std::vector<flare_named_tensor> views_of(std::span<const tensor::OwnedTensor> tensors) {
  std::vector<flare_named_tensor> views;
  views.reserve(tensors.size());
  for (const auto& t : tensors) views.push_back(t.view());
  return views;
}

}  // namespace

SiteUpdateStruct::SiteUpdateStruct(SiteUpdateFields fields)
    : SiteUpdateStruct(fields, views_of(fields.weights), views_of(fields.aux)) {}

SiteUpdateStruct::SiteUpdateStruct(SiteUpdateFields header, std::vector<flare_named_tensor> weights,
                                   std::vector<flare_named_tensor> aux)
    : fields_(std::move(header)), weights_(std::move(weights)), aux_(std::move(aux)) {
  raw_.struct_size = sizeof(raw_);
  raw_.site = fields_.site.c_str();
  raw_.round = fields_.round;
  raw_.weights = weights_.data();
  raw_.num_weights = weights_.size();
  raw_.aux = aux_.empty() ? nullptr : aux_.data();
  raw_.num_aux = aux_.size();
  raw_.num_samples = fields_.num_samples;
  raw_.num_steps = fields_.num_steps;
  raw_.metrics_json = fields_.metrics_json.c_str();
  raw_.meta_json = fields_.meta_json.c_str();
}

}  // namespace flare::host
