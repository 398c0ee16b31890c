// The server's round checkpoint: everything a killed server needs to resume a
// job after its last completed round. One file per round,
// `checkpoint_round_<k>.ckpt`, laid out as
//   a safetensors file (storage/safetensors.hpp) | 32-byte SHA-256 of all before it.
// Why this layout: the model and the aggregator's state are named tensors, and
// safetensors is the format storage already writes, validates and fuzzes, so
// the checkpoint adds no second tensor encoding; its header holds the small
// fields as metadata (readable with json alone). The trailer is a digest of the
// whole file, so a torn or changed file is refused before a byte of it is
// parsed or trusted; at the end, because the writer streams and hashes once.
// Tensors: "model/<name>", "aggregator/<name>" (prefixes keep the two sets'
// names apart), "rng_state" (U8: any bytes survive, JSON strings would not);
// their order is kept in the metadata ("model_tensors", "aggregator_tensors").
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "storage/storage_error.hpp"
#include "tensor/owned_tensor.hpp"

namespace flare::checkpoint {

struct AggregatorState {
  std::vector<tensor::OwnedTensor> tensors;  // may be empty
  std::string meta_json;                     // its JSON meta; may be empty
};

struct RoundCheckpoint {
  std::int64_t round = 0;  // the job's last completed round
  std::vector<tensor::OwnedTensor> global_model;
  AggregatorState aggregator;
  std::string best_model_json;  // the best model's figures so far (JSON); may be empty
  std::string rng_state;        // the sampling RNG's state, any bytes
  std::string job_fingerprint;  // of the job spec: another job's checkpoint is refused
};

// What write_checkpoint writes, as views (the server's global model and the
// aggregator's state are written from where they are, never copied).
struct RoundCheckpointView {
  std::int64_t round = 0;
  std::span<const flare_named_tensor> global_model;
  std::span<const flare_named_tensor> aggregator_tensors;
  std::string_view aggregator_meta_json;
  std::string_view best_model_json;
  std::string_view rng_state;
  std::string_view job_fingerprint;
};

// "checkpoint_round_<round>.ckpt".
std::string checkpoint_file_name(std::int64_t round);

struct CheckpointFile {
  std::int64_t round;
  std::filesystem::path path;
};

// The checkpoint files of `folder` (named exactly checkpoint_file_name(k);
// temp files and other names are skipped), newest round first; none when
// the folder is missing. Their contents are not read.
std::vector<CheckpointFile> checkpoint_files(const std::filesystem::path& folder);

// Writes `checkpoint` into `folder` (created if missing) atomically: temp file
// in the same folder, fsync, rename, fsync of the folder (storage::AtomicFile).
// Then keeps the `keep` newest checkpoints by round and removes the older ones:
// only after the new one is durable, so a crash never leaves fewer good files.
// Returns the file written. Throws storage::StorageError naming the file.
std::filesystem::path write_checkpoint(const std::filesystem::path& folder,
                                       const RoundCheckpointView& checkpoint, int keep = 2);
std::filesystem::path write_checkpoint(const std::filesystem::path& folder,
                                       const RoundCheckpoint& checkpoint, int keep = 2);

// A checkpoint file not loaded, and why ("truncated: ...", "SHA-256 mismatch ...",
// "another job's checkpoint ...").
struct CheckpointRefusal {
  std::filesystem::path file;
  std::string reason;
};

struct LatestCheckpoint {
  std::optional<RoundCheckpoint> checkpoint;  // none: no file verified
  std::filesystem::path file;                 // the one loaded
  std::vector<CheckpointRefusal> refusals;    // newer files skipped, newest first
};

// The newest checkpoint in `folder` that verifies (checksum, structure, round
// matching its file name, `job_fingerprint`). Each newer one that does not is
// refused with its reason and never loaded. Temp files of an interrupted write
// (".checkpoint_round_<k>.ckpt.tmp-...") do not match the name and are ignored.
// A missing folder holds no checkpoint. Does not throw for a bad file.
LatestCheckpoint load_latest_checkpoint(const std::filesystem::path& folder,
                                        std::string_view job_fingerprint);

}  // namespace flare::checkpoint
