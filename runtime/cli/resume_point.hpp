// Where `flare-run --resume RUN_DIR` (and a restarted flare-server, for a job
// its stop cut off) goes on from: the run folder's job.toml and its newest
// round checkpoint (checkpoint/round_checkpoint.hpp) that is whole.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "checkpoint/round_checkpoint.hpp"
#include "jobspec/job_spec.hpp"

namespace flare::cli {

// The checkpoints of a run folder, as far as can be told without the job.
struct CheckpointScan {
  std::optional<std::int64_t> round;  // none: no file whose checksum verifies
  std::filesystem::path file;
  std::vector<checkpoint::CheckpointRefusal> refusals;  // newer files refused, newest first
};

// The newest `checkpoint_round_<k>.ckpt` in `folder` whose SHA-256 trailer
// verifies, and each newer one refused with its reason. Only the checksum:
// the server that resumes checks the rest (structure, the job's fingerprint)
// and refuses with server::NothingToResume, still before any site starts.
CheckpointScan newest_whole_checkpoint(const std::filesystem::path& folder);

// "no checkpoint in FOLDER (refused: FILE: REASON; ...)", or why there is none.
std::string why_no_checkpoint(const CheckpointScan& scan, const std::filesystem::path& folder);

struct ResumePoint {
  std::filesystem::path run_dir;  // absolute, a `latest` link resolved
  jobspec::JobSpec job;           // RUN_DIR/job.toml, as the run first wrote it
  // The run already succeeded (its metrics.jsonl ends it): its rounds. Nothing
  // to resume, and no checkpoint is looked for.
  std::optional<std::int64_t> finished_rounds;
  std::int64_t round = 0;  // the checkpoint's last completed round
  std::filesystem::path checkpoint_file;
};

// Reads RUN_DIR. Throws InputError (bad input, exit 2) naming the folder and
// what is missing: the folder, its job.toml, a checkpoint (with each refused
// file's reason); jobspec::JobSpecError for a job.toml that does not load.
ResumePoint find_resume_point(const std::filesystem::path& run_dir);

}  // namespace flare::cli
