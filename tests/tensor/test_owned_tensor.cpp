// flare::tensor::OwnedTensor: views lend its bytes without a copy; copy_of takes
// a borrowed view's bytes (from its byte_offset on) into a tensor of its own.
#include "tensor/owned_tensor.hpp"

#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <vector>

using flare::tensor::copy_of;
using flare::tensor::OwnedTensor;
using flare::tensor::views_of;

namespace {

OwnedTensor floats(std::string name, std::vector<std::int64_t> shape, std::vector<float> values) {
  OwnedTensor t{std::move(name), {kDLFloat, 32, 1}, std::move(shape), {}};
  t.data.resize(values.size() * sizeof(float));
  std::memcpy(t.data.data(), values.data(), t.data.size());
  return t;
}

}  // namespace

TEST_CASE("a view points at the tensor's own name, shape and bytes, dense on the CPU") {
  OwnedTensor t = floats("fc.weight", {2, 3}, {1, 2, 3, 4, 5, 6});
  const flare_named_tensor v = t.view();
  CHECK(v.struct_size == sizeof(flare_named_tensor));
  CHECK(v.name == t.name.c_str());
  CHECK(v.tensor.data == t.data.data());
  CHECK(v.tensor.device.device_type == kDLCPU);
  CHECK(v.tensor.ndim == 2);
  CHECK(v.tensor.shape == t.shape.data());
  CHECK(v.tensor.strides == nullptr);
  CHECK(v.tensor.byte_offset == 0);
  CHECK(v.tensor.dtype.code == kDLFloat);
  CHECK(v.tensor.dtype.bits == 32);
}

TEST_CASE("a scalar's view has no dimensions") {
  const OwnedTensor t = floats("num_batches", {}, {42});
  const flare_named_tensor v = t.view();
  CHECK(v.tensor.ndim == 0);
  CHECK(*static_cast<const float*>(v.tensor.data) == 42);
}

TEST_CASE("copy_of owns a copy of the viewed bytes, starting at the view's byte_offset") {
  std::vector<float> memory = {9, 1, 2, 3};
  std::int64_t shape[] = {3};
  flare_named_tensor borrowed{};
  borrowed.struct_size = sizeof borrowed;
  borrowed.name = "bias";
  borrowed.tensor = {memory.data(), {kDLCPU, 0}, 1, {kDLFloat, 32, 1}, shape, nullptr,
                     sizeof(float)};
  const OwnedTensor copy = copy_of(borrowed);
  memory = {0, 0, 0, 0};  // the copy does not see later writes

  CHECK(copy.name == "bias");
  CHECK(copy.shape == std::vector<std::int64_t>{3});
  REQUIRE(copy.data.size() == 3 * sizeof(float));
  float values[3];
  std::memcpy(values, copy.data.data(), sizeof values);
  CHECK(values[0] == 1);
  CHECK(values[1] == 2);
  CHECK(values[2] == 3);
}

TEST_CASE("views_of gives one view per tensor, in order, into each tensor's bytes") {
  std::vector<OwnedTensor> model = {floats("a", {1}, {1}), floats("b", {2}, {2, 3})};
  const auto views = views_of(model);
  REQUIRE(views.size() == 2);
  CHECK(std::string(views[0].name) == "a");
  CHECK(views[1].tensor.data == model[1].data.data());
  CHECK(views[1].tensor.shape[0] == 2);
}
