// The SDK's one way to name a dtype and a shape in messages (flare/plugin.hpp).
#include <flare/plugin.hpp>

#include <doctest/doctest.h>

#include <cstdint>
#include <vector>

using flare::describe_dtype;
using flare::describe_shape;

TEST_CASE("a dtype is named by its kind and bits, as PyTorch and NumPy spell them") {
  CHECK(describe_dtype({kDLFloat, 32, 1}) == "float32");
  CHECK(describe_dtype({kDLFloat, 16, 1}) == "float16");
  CHECK(describe_dtype({kDLBfloat, 16, 1}) == "bfloat16");
  CHECK(describe_dtype({kDLInt, 64, 1}) == "int64");
  CHECK(describe_dtype({kDLUInt, 8, 1}) == "uint8");
  CHECK(describe_dtype({kDLComplex, 64, 1}) == "complex64");
}

TEST_CASE("vector lanes and type codes DLPack does not name are still told apart") {
  CHECK(describe_dtype({kDLFloat, 32, 4}) == "float32x4");
  CHECK(describe_dtype({9, 16, 1}) == "code9_16");
}

TEST_CASE("a shape is its extents in brackets; a scalar's is empty") {
  CHECK(describe_shape(std::vector<int64_t>{4, 3}) == "[4, 3]");
  CHECK(describe_shape(std::vector<int64_t>{0, 3}) == "[0, 3]");
  CHECK(describe_shape({}) == "[]");
  int64_t extents[] = {2, 5, 7};
  const DLTensor t = flare::dl_view(nullptr, {kDLFloat, 32, 1}, extents, 2);
  CHECK(describe_shape({t.shape, static_cast<size_t>(t.ndim)}) == "[2, 5]");
}
