// The server's persistor: every global model and the best one, as
// safetensors files (readable from Python with json + numpy only).
#pragma once

#include <filesystem>
#include <span>

#include <flare/plugin_abi.h>
#include <nlohmann/json.hpp>

namespace flare::server {

class ModelStore {
 public:
  explicit ModelStore(std::filesystem::path models_dir);

  // models/global_round_<k>.safetensors; k = rounds completed (0 = initial).
  std::filesystem::path save_global(int64_t model_round, std::span<const flare_named_tensor> model);
  // models/best.safetensors, with the round and figures in its metadata.
  std::filesystem::path save_best(int64_t model_round, std::span<const flare_named_tensor> model,
                                  const nlohmann::json& figures);
  std::filesystem::path global_path(int64_t model_round) const;

 private:
  std::filesystem::path dir_;
};

}  // namespace flare::server
