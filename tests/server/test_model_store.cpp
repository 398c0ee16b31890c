// The server's persistor: each global model and the best one as safetensors.
#include <doctest/doctest.h>

#include <cstring>

#include "server/model_store.hpp"
#include "storage/safetensors.hpp"
#include "temp_folder.hpp"

using namespace flare;

namespace {

std::vector<tensor::OwnedTensor> model(float value) {
  std::vector<tensor::OwnedTensor> t{{"fc.weight", {kDLFloat, 32, 1}, {2}, {}}};
  t[0].data.resize(2 * sizeof(float));
  const float values[2] = {value, -value};
  std::memcpy(t[0].data.data(), values, sizeof(values));
  return t;
}

}  // namespace

TEST_CASE("each global model is saved as global_round_<k> with its round in the metadata") {
  testing::TempFolder dir;
  server::ModelStore store(dir / "models");  // created here
  auto m = model(1.5);
  const auto path = store.save_global(3, tensor::views_of(m));
  CHECK(path == dir / "models/global_round_3.safetensors");
  CHECK(store.global_path(3) == path);
  const auto file = storage::load_safetensors(path);
  CHECK(file.metadata.at("round") == "3");
  REQUIRE(file.tensors.size() == 1);
  CHECK(file.tensors[0].name == "fc.weight");
  CHECK(file.tensors[0].shape == std::vector<int64_t>{2});
  CHECK(file.tensors[0].data == m[0].data);
}

TEST_CASE("the best model is saved with its round and figures in the metadata") {
  testing::TempFolder dir;
  server::ModelStore store(dir / "models");
  auto first = model(1), second = model(2);
  store.save_best(1, tensor::views_of(first), {{"val_acc", 0.5}});
  const auto path = store.save_best(2, tensor::views_of(second), {{"val_acc", 0.75}});
  CHECK(path == dir / "models/best.safetensors");
  const auto file = storage::load_safetensors(path);  // the later one replaced the earlier
  CHECK(file.metadata.at("round") == "2");
  CHECK(file.metadata.at("val_acc") == "0.75");
  CHECK(file.tensors.at(0).data == second[0].data);
}

TEST_CASE("save_every writes rounds 0, k, 2k, ... and the final one; keep_last removes older ones") {
  testing::TempFolder dir;
  server::ModelStore store(dir / "models", {.every = 3, .keep_last = 2, .final_round = 7});
  auto m = model(1);
  std::vector<int64_t> written;
  for (int64_t round = 0; round <= 7; ++round)
    if (!store.save_global(round, tensor::views_of(m)).empty()) written.push_back(round);
  CHECK(written == std::vector<int64_t>{0, 3, 6, 7});
  // Of those, the newest two stay.
  for (int64_t round = 0; round <= 7; ++round) {
    const bool kept = round == 6 || round == 7;
    INFO("round " << round);
    CHECK(std::filesystem::exists(store.global_path(round)) == kept);
    CHECK(store.kept_global(round).empty() == !kept);
  }
}

TEST_CASE("by default every global model is written and kept") {
  testing::TempFolder dir;
  server::ModelStore store(dir / "models");
  auto m = model(1);
  for (int64_t round = 0; round < 5; ++round) CHECK(!store.save_global(round, tensor::views_of(m)).empty());
  for (int64_t round = 0; round < 5; ++round) CHECK(std::filesystem::exists(store.global_path(round)));
}
