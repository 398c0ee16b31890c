// Named tensors to the protocol's messages and back.
#include <doctest/doctest.h>

#include <cstring>

#include "transport/tensor_codec.hpp"

using namespace flare;
using Tensors = google::protobuf::RepeatedPtrField<transport::v1::Tensor>;

namespace {

template <class T>
tensor::OwnedTensor owned(const std::string& name, DLDataType dtype, std::vector<int64_t> shape,
                          const std::vector<T>& values) {
  tensor::OwnedTensor t{name, dtype, std::move(shape), {}};
  t.data.resize(values.size() * sizeof(T));
  if (!values.empty()) std::memcpy(t.data.data(), values.data(), t.data.size());
  return t;
}

}  // namespace

TEST_CASE("tensors survive the wire: names, dtypes, shapes and bytes, in order") {
  std::vector<tensor::OwnedTensor> model{
      owned<float>("fc.weight", {kDLFloat, 32, 1}, {2, 3}, {1, 2, 3, 4, 5, 6}),
      owned<int64_t>("bn.num_batches_tracked", {kDLInt, 64, 1}, {}, {7}),  // a scalar
      owned<uint16_t>("half", {kDLBfloat, 16, 1}, {2}, {0x3f80, 0xbf80}),
      owned<float>("empty", {kDLFloat, 32, 1}, {0, 4}, {})};
  Tensors wire;
  transport::encode_tensors(tensor::views_of(model), &wire);
  REQUIRE(wire.size() == 4);
  CHECK(wire[0].dtype_code() == kDLFloat);
  CHECK(wire[0].dtype_bits() == 32);
  CHECK(wire[0].dtype_lanes() == 1);
  const auto back = transport::decode_tensors(wire);
  REQUIRE(back.size() == model.size());
  for (size_t i = 0; i < model.size(); ++i) {
    INFO(model[i].name);
    CHECK(back[i].name == model[i].name);
    CHECK(back[i].dtype.code == model[i].dtype.code);
    CHECK(back[i].dtype.bits == model[i].dtype.bits);
    CHECK(back[i].dtype.lanes == model[i].dtype.lanes);
    CHECK(back[i].shape == model[i].shape);
    CHECK(back[i].data == model[i].data);
  }
}

TEST_CASE("a view with a byte offset is sent from its offset") {
  std::vector<float> buffer = {9, 9, 1, 2};
  int64_t shape = 2;
  flare_named_tensor view{};
  view.struct_size = sizeof(view);
  view.name = "tail";
  view.tensor = {buffer.data(), {kDLCPU, 0}, 1, {kDLFloat, 32, 1}, &shape, nullptr,
                 2 * sizeof(float)};
  Tensors wire;
  transport::encode_tensors({&view, 1}, &wire);
  const auto back = transport::decode_tensors(wire);
  REQUIRE(back.at(0).data.size() == 2 * sizeof(float));
  float values[2];
  std::memcpy(values, back[0].data.data(), sizeof(values));
  CHECK(values[0] == 1);
  CHECK(values[1] == 2);
}

TEST_CASE("a tensor whose bytes do not fit its shape is refused, naming it") {
  Tensors wire;
  auto* t = wire.Add();
  t->set_name("fc.bias");
  t->set_dtype_code(kDLFloat);
  t->set_dtype_bits(32);
  t->set_dtype_lanes(1);
  t->add_shape(3);
  t->set_data(std::string(8, '\0'));
  CHECK_THROWS_WITH_AS(transport::decode_tensors(wire),
                       "tensor 'fc.bias' carries 8 bytes, its shape needs 12",
                       std::runtime_error);
}
