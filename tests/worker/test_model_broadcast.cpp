// flare::worker::broadcast_model: rank 0's global model to the other ranks of
// a c10d group (three ranks as threads of this process), in one broadcast.
#include "worker/model_broadcast.hpp"

#include "counting_collectives.hpp"
#include "rank_threads.hpp"

#include <doctest/doctest.h>

#include <flare/plugin.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace {

using flare::testing::CountingCollectives;
using flare::testing::form_group;
using flare::testing::on_every_rank;

// A model of mixed dtypes and shapes, a scalar and an empty tensor among them,
// odd byte counts so that tensors do not start aligned by accident.
struct MixedModel {
  struct Tensor {
    std::string name;
    DLDataType dtype;
    std::vector<int64_t> shape;
    std::vector<std::byte> bytes;
  };
  std::vector<Tensor> tensors{
      {"conv.weight", {kDLFloat, 32, 1}, {2, 3, 5}, {}},
      {"conv.bias", {kDLFloat, 64, 1}, {3}, {}},
      {"steps", {kDLInt, 64, 1}, {}, {}},
      {"bf16", {kDLBfloat, 16, 1}, {7}, {}},
      {"half", {kDLFloat, 16, 1}, {3, 1, 3}, {}},
      {"empty", {kDLFloat, 32, 1}, {0, 4}, {}},
      {"codes", {kDLUInt, 8, 1}, {5}, {}},
  };

  // Rank 0 holds a distinct byte pattern; the others hold 0xEE everywhere.
  explicit MixedModel(int rank) {
    int counter = 1;
    for (Tensor& t : tensors) {
      int64_t n = 1;
      for (const int64_t d : t.shape) n *= d;
      t.bytes.resize(static_cast<std::size_t>(n) * t.dtype.bits / 8);
      for (std::byte& b : t.bytes) b = std::byte(rank == 0 ? (counter++ * 37) % 251 : 0xEE);
    }
  }

  std::vector<flare_named_tensor> views() {
    std::vector<flare_named_tensor> out;
    for (Tensor& t : tensors)
      out.push_back(flare::tensor_view(t.name.c_str(), t.bytes.data(), t.dtype, t.shape.data(),
                                       static_cast<int32_t>(t.shape.size())));
    return out;
  }
};

// What a view holds, as bytes.
std::vector<std::byte> bytes_of(const flare_named_tensor& t) {
  const auto* data = static_cast<const std::byte*>(t.tensor.data) + t.tensor.byte_offset;
  return {data, data + flare::num_bytes(t.tensor)};
}

}  // namespace

TEST_CASE("every rank receives rank 0's exact bits of a mixed model in one broadcast") {
  auto group = form_group(3);
  const MixedModel sent(0);
  const auto received = on_every_rank(3, [&](int r) {
    CountingCollectives counting(group[r].get());
    MixedModel mine(r);
    auto model = flare::worker::broadcast_model(counting, mine.views(), 0);
    CHECK(counting.broadcasts.load() == 1);
    CHECK(counting.all_reduces.load() == 0);
    std::vector<std::pair<std::string, std::vector<std::byte>>> out;
    for (const auto& v : model.views()) {
      CHECK(reinterpret_cast<std::uintptr_t>(v.tensor.data) % 16 == 0);
      out.emplace_back(v.name, bytes_of(v));
    }
    return out;
  });
  for (int r = 0; r < 3; ++r) {
    CAPTURE(r);
    REQUIRE(received[r].size() == sent.tensors.size());
    for (std::size_t i = 0; i < sent.tensors.size(); ++i) {
      CHECK(received[r][i].first == sent.tensors[i].name);
      CHECK(received[r][i].second == sent.tensors[i].bytes);
    }
  }
}

TEST_CASE("FlatTensors keep each tensor's name, dtype and shape") {
  MixedModel model(0);
  const auto original = model.views();
  flare::worker::FlatTensors flat(original, /*copy_values=*/true);
  const auto views = flat.views();
  REQUIRE(views.size() == original.size());
  for (std::size_t i = 0; i < views.size(); ++i) {
    CHECK(std::string(views[i].name) == original[i].name);
    CHECK(views[i].tensor.dtype.code == original[i].tensor.dtype.code);
    CHECK(views[i].tensor.dtype.bits == original[i].tensor.dtype.bits);
    CHECK(std::vector<int64_t>(views[i].tensor.shape, views[i].tensor.shape + views[i].tensor.ndim) ==
          std::vector<int64_t>(original[i].tensor.shape,
                               original[i].tensor.shape + original[i].tensor.ndim));
    CHECK(bytes_of(views[i]) == bytes_of(original[i]));
  }
}

TEST_CASE("a rank whose tensors are laid out unlike rank 0's fails, naming the mismatch") {
  // Same byte count, another order: without the check, bytes would land in the
  // wrong tensors.
  auto group = form_group(2);
  const auto errors = on_every_rank(2, [&](int r) -> std::string {
    MixedModel mine(r);
    auto views = mine.views();
    if (r == 1) std::swap(views[0], views[1]);
    try {
      flare::worker::broadcast_model(*group[r], views, 0);
      return "";
    } catch (const flare::worker::ModelLayoutError& e) {
      return e.what();
    }
  });
  CHECK(errors[0].empty());
  CHECK(errors[1].find("rank 1's model differs from rank 0's") != std::string::npos);
}
