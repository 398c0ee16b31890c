#include "server/model_store.hpp"

#include <map>
#include <string>

#include "storage/safetensors.hpp"

namespace flare::server {

ModelStore::ModelStore(std::filesystem::path models_dir) : dir_(std::move(models_dir)) {
  std::filesystem::create_directories(dir_);
}

std::filesystem::path ModelStore::global_path(int64_t model_round) const {
  return dir_ / ("global_round_" + std::to_string(model_round) + ".safetensors");
}

std::filesystem::path ModelStore::save_global(int64_t model_round,
                                              std::span<const flare_named_tensor> model) {
  const auto path = global_path(model_round);
  storage::save_safetensors(path, model, {{"round", std::to_string(model_round)}});
  return path;
}

std::filesystem::path ModelStore::save_best(int64_t model_round,
                                            std::span<const flare_named_tensor> model,
                                            const nlohmann::json& figures) {
  std::map<std::string, std::string> metadata{{"round", std::to_string(model_round)}};
  for (const auto& [name, value] : figures.items()) metadata[name] = value.dump();
  const auto path = dir_ / "best.safetensors";
  storage::save_safetensors(path, model, metadata);
  return path;
}

}  // namespace flare::server
