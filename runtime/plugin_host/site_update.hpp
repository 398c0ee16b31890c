// One site's update in the aggregator's C terms: the host builds the
// flare_site_update that accept() reads, as TrainResult reads what train()
// wrote, so no caller assembles ABI structs by hand.
#pragma once

#include <flare/plugin_abi.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "tensor/owned_tensor.hpp"

namespace flare::host {

// One site's update as the host holds it. The tensors are borrowed.
struct SiteUpdateFields {
  std::string site;
  int64_t round = 0;
  std::span<const tensor::OwnedTensor> weights;
  std::span<const tensor::OwnedTensor> aux;
  double num_samples = 0;
  int64_t num_steps = 0;
  std::string metrics_json;  // JSON text, handed over as it is
  std::string meta_json;
};

// The flare_site_update over `fields`, owning the views and strings it points
// to; the tensors' bytes stay borrowed, so they must live unchanged while
// raw() is used. Not copyable: raw() points into this object.
class SiteUpdateStruct {
 public:
  explicit SiteUpdateStruct(SiteUpdateFields fields);
  // Over views the caller keeps alive (fields.weights / aux are not read).
  SiteUpdateStruct(SiteUpdateFields header, std::vector<flare_named_tensor> weights,
                   std::vector<flare_named_tensor> aux);
  SiteUpdateStruct(const SiteUpdateStruct&) = delete;
  SiteUpdateStruct& operator=(const SiteUpdateStruct&) = delete;

  // struct_size is this host's; aux is NULL when there is none.
  const flare_site_update& raw() const { return raw_; }

 private:
  SiteUpdateFields fields_;
  std::vector<flare_named_tensor> weights_;
  std::vector<flare_named_tensor> aux_;
  flare_site_update raw_{};
};

}  // namespace flare::host
