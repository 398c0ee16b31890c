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
                       "tensor 'fc.bias' carries 8 bytes, its shape [3] of float32 needs 12",
                       transport::MalformedTensor);
}

TEST_CASE("a shape that is negative or overflows, or a dtype of no bits, is refused before any allocation") {
  const auto refused = [](DLDataType dtype, std::vector<int64_t> shape, size_t bytes) {
    Tensors wire;
    auto* good = wire.Add();  // the refusal names the second tensor, by its position
    good->set_name("ok");
    good->set_dtype_code(kDLFloat);
    good->set_dtype_bits(32);
    good->set_dtype_lanes(1);
    good->set_data(std::string(sizeof(float), '\0'));  // a scalar
    auto* t = wire.Add();
    t->set_name("w");
    t->set_dtype_code(dtype.code);
    t->set_dtype_bits(dtype.bits);
    t->set_dtype_lanes(dtype.lanes);
    for (int64_t d : shape) t->add_shape(d);
    t->set_data(std::string(bytes, '\0'));
    try {
      (void)transport::decode_tensors(wire);
    } catch (const transport::MalformedTensor& e) {
      CHECK(e.index() == 1);
      return std::string(e.what());
    }
    FAIL("expected a MalformedTensor");
    return std::string();
  };
  // Each would have been accepted with the bytes given, or allocated without bound.
  CHECK(refused({kDLFloat, 32, 1}, {-1}, 0) == "tensor 'w' has shape [-1], negative or too large");
  CHECK(refused({kDLFloat, 32, 1}, {-2, -2}, 16) ==
        "tensor 'w' has shape [-2, -2], negative or too large");
  CHECK(refused({kDLFloat, 32, 1}, {1LL << 40, 1LL << 40}, 0) ==
        "tensor 'w' has shape [1099511627776, 1099511627776], negative or too large");
  CHECK(refused({kDLFloat, 0, 1}, {1LL << 40}, 0) ==
        "tensor 'w' has no valid dtype (code 2, bits 0, lanes 1)");
  CHECK(refused({kDLFloat, 32, 0}, {4}, 0) ==
        "tensor 'w' has no valid dtype (code 2, bits 32, lanes 0)");
}
