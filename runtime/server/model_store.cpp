#include "server/model_store.hpp"

#include <map>
#include <string>

#include "storage/safetensors.hpp"

namespace flare::server {

ModelStore::ModelStore(std::filesystem::path models_dir, SavePolicy policy)
    : dir_(std::move(models_dir)), policy_(policy) {
  std::filesystem::create_directories(dir_);
}

std::filesystem::path ModelStore::global_path(int64_t model_round) const {
  return dir_ / ("global_round_" + std::to_string(model_round) + ".safetensors");
}

std::filesystem::path ModelStore::save_global(int64_t model_round,
                                              std::span<const flare_named_tensor> model) {
  if (model_round % policy_.every != 0 && model_round != policy_.final_round) return {};
  const auto path = global_path(model_round);
  storage::save_safetensors(path, model, {{"round", std::to_string(model_round)}});
  kept_.push_back(model_round);
  // Removed only after the newer file is complete (save_safetensors writes
  // it atomically), so a crash never leaves fewer than keep_last models.
  while (policy_.keep_last > 0 && static_cast<int64_t>(kept_.size()) > policy_.keep_last) {
    std::filesystem::remove(global_path(kept_.front()));
    kept_.pop_front();
  }
  return path;
}

std::filesystem::path ModelStore::aggregator_state_path() const {
  return dir_ / "aggregator_state.safetensors";
}

std::filesystem::path ModelStore::save_aggregator_state(
    int64_t model_round, std::span<const flare_named_tensor> tensors, std::string_view meta_json) {
  const auto path = aggregator_state_path();
  storage::save_safetensors(path, tensors,
                            {{"round", std::to_string(model_round)},
                             {"meta", meta_json.empty() ? "{}" : std::string(meta_json)}});
  return path;
}

std::filesystem::path ModelStore::kept_global(int64_t model_round) const {
  for (const int64_t kept : kept_)
    if (kept == model_round) return global_path(model_round);
  return {};
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
