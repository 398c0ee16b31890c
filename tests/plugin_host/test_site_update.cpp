// The aggregator's C struct for one site's update, built by the host.
#include <doctest/doctest.h>

#include <cstring>

#include "plugin_host/site_update.hpp"

using namespace flare;

namespace {

tensor::OwnedTensor floats(const std::string& name, std::vector<float> values) {
  tensor::OwnedTensor t{name, {kDLFloat, 32, 1}, {static_cast<int64_t>(values.size())}, {}};
  t.data.resize(values.size() * sizeof(float));
  std::memcpy(t.data.data(), values.data(), t.data.size());
  return t;
}

}  // namespace

TEST_CASE("the C struct points at the update's tensors, counts and texts") {
  const std::vector<tensor::OwnedTensor> weights{floats("a", {1, 2}), floats("b", {3})};
  const std::vector<tensor::OwnedTensor> aux{floats("control", {4})};
  const host::SiteUpdateStruct update({.site = "site-3",
                                       .round = 2,
                                       .weights = weights,
                                       .aux = aux,
                                       .num_samples = 640,
                                       .num_steps = 10,
                                       .metrics_json = R"({"train_loss":0.5})",
                                       .meta_json = R"({"data":"x"})"});
  const flare_site_update& raw = update.raw();
  CHECK(raw.struct_size == sizeof(flare_site_update));
  CHECK(std::string(raw.site) == "site-3");
  CHECK(raw.round == 2);
  REQUIRE(raw.num_weights == 2);
  CHECK(std::string(raw.weights[1].name) == "b");
  CHECK(raw.weights[0].tensor.data == weights[0].data.data());  // borrowed, not copied
  CHECK(raw.weights[0].tensor.shape[0] == 2);
  REQUIRE(raw.num_aux == 1);
  CHECK(std::string(raw.aux[0].name) == "control");
  CHECK(raw.num_samples == 640);
  CHECK(raw.num_steps == 10);
  CHECK(std::string(raw.metrics_json) == R"({"train_loss":0.5})");
  CHECK(std::string(raw.meta_json) == R"({"data":"x"})");
}

TEST_CASE("an update without aux tensors passes none") {
  const std::vector<tensor::OwnedTensor> weights{floats("a", {1})};
  const host::SiteUpdateStruct update({.site = "s", .weights = weights});
  CHECK(update.raw().aux == nullptr);
  CHECK(update.raw().num_aux == 0);
  CHECK(std::string(update.raw().metrics_json).empty());
}
