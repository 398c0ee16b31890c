#include "cli/resume_point.hpp"

#include <algorithm>
#include <fstream>

#include <nlohmann/json.hpp>

#include "checkpoint/checkpoint_verification.hpp"
#include "checkpoint/round_checkpoint.hpp"
#include "cli/input_checks.hpp"

namespace flare::cli {

namespace fs = std::filesystem;

namespace {

// The last "job" line of metrics.jsonl with "status": "succeeded": its rounds.
std::optional<std::int64_t> succeeded_rounds(const fs::path& metrics_file) {
  std::ifstream in(metrics_file);
  std::optional<std::int64_t> rounds;
  std::string line;
  while (std::getline(in, line)) {
    try {
      const auto j = nlohmann::json::parse(line);
      if (!j.is_object() || j.value("kind", "") != "job") continue;
      // A later failed attempt (an interrupted resume) ends the run again.
      rounds = j.value("status", "") == "succeeded"
                   ? std::optional(j.value("rounds_completed", std::int64_t{0}))
                   : std::nullopt;
    } catch (const nlohmann::json::exception&) {
      // The line a killed run was writing: not a job's end.
    }
  }
  return rounds;
}

}  // namespace

CheckpointScan newest_whole_checkpoint(const fs::path& folder) {
  const auto files = checkpoint::checkpoint_files(folder);
  CheckpointScan scan;
  for (const auto& [round, file] : files) {
    if (auto problem = checkpoint::checksum_problem(file)) {
      scan.refusals.push_back({file, std::move(*problem)});
      continue;
    }
    scan.round = round;
    scan.file = file;
    break;
  }
  return scan;
}

std::string why_no_checkpoint(const CheckpointScan& scan, const fs::path& folder) {
  if (scan.refusals.empty())
    return "no checkpoint in " + folder.string() +
           " (one is written after each round: the run completed none)";
  std::string refused;
  for (const auto& r : scan.refusals)
    refused += (refused.empty() ? "" : "; ") + r.file.filename().string() + ": " + r.reason;
  return "no checkpoint in " + folder.string() + " that verifies (refused: " + refused + ")";
}

ResumePoint find_resume_point(const fs::path& run_dir) {
  std::error_code ec;
  if (!fs::is_directory(run_dir, ec))
    throw InputError("--resume " + run_dir.string() + ": expected a run folder, found " +
                     (fs::exists(run_dir, ec) ? "a file" : "no such folder"));
  ResumePoint point;
  point.run_dir = fs::canonical(run_dir);
  const fs::path job_file = point.run_dir / "job.toml";
  if (!fs::is_regular_file(job_file, ec))
    throw InputError("--resume " + run_dir.string() + ": expected a run folder of flare-run, " +
                     "found no job.toml in " + point.run_dir.string());
  point.job = jobspec::load_job(job_file);
  point.finished_rounds = succeeded_rounds(point.run_dir / "metrics.jsonl");
  if (point.finished_rounds) return point;
  const fs::path checkpoints = point.run_dir / "checkpoints";
  const auto scan = newest_whole_checkpoint(checkpoints);
  if (!scan.round)
    throw InputError("nothing to resume in " + point.run_dir.string() + ": " +
                     why_no_checkpoint(scan, checkpoints));
  point.round = *scan.round;
  point.checkpoint_file = scan.file;
  return point;
}

}  // namespace flare::cli
