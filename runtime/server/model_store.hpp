// The server's persistor: the global models (every round, or every k-th and
// the last n, for big models) and the best one, as safetensors files
// (readable from Python with json + numpy only).
#pragma once

#include <cstdint>
#include <deque>
#include <filesystem>
#include <span>
#include <string_view>

#include <flare/plugin_abi.h>
#include <nlohmann/json.hpp>

namespace flare::server {

// Which global models are written ([server] save_every, keep_last).
struct SavePolicy {
  int64_t every = 1;      // models of rounds 0, k, 2k, ... and the final one
  int64_t keep_last = 0;  // 0: all; n: the newest n global_round files
  int64_t final_round = -1;  // always saved (-1: none is special)
};

class ModelStore {
 public:
  explicit ModelStore(std::filesystem::path models_dir, SavePolicy policy = {});

  // models/global_round_<k>.safetensors; k = rounds completed (0 = initial).
  // Empty when the policy skips this round. With keep_last, older rounds'
  // files are removed after a newer one is written.
  std::filesystem::path save_global(int64_t model_round, std::span<const flare_named_tensor> model);
  // models/best.safetensors, with the round and figures in its metadata.
  std::filesystem::path save_best(int64_t model_round, std::span<const flare_named_tensor> model,
                                  const nlohmann::json& figures);
  // models/aggregator_state.safetensors: the aggregator's state (ABI 1.4
  // get_state) as of global model `model_round`, its JSON in the metadata
  // ("meta"), replacing the last one.
  std::filesystem::path save_aggregator_state(int64_t model_round,
                                              std::span<const flare_named_tensor> tensors,
                                              std::string_view meta_json);
  std::filesystem::path aggregator_state_path() const;
  std::filesystem::path global_path(int64_t model_round) const;
  // The round's file if this store wrote it and still keeps it, else empty.
  std::filesystem::path kept_global(int64_t model_round) const;

 private:
  std::filesystem::path dir_;
  SavePolicy policy_;
  std::deque<int64_t> kept_;  // rounds whose files are on disk, oldest first
};

}  // namespace flare::server
