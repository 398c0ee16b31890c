// A run as metrics.jsonl tells it (docs/metrics.md has the schema): what the
// report draws. Reading is forgiving: the log of a crashed run may end in a
// torn line, and a run that failed early has few lines or none.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace flare::report {

// A line's numeric keys (others, and nested objects, are left out).
using Figures = std::map<std::string, double>;

// A "site" line: one site's training in a round.
struct SiteRound {
  std::string site;
  int64_t round = 0;        // 1-based, the round trained
  Figures figures;          // train_loss, train_seconds, images_per_s, num_samples, ...
  Figures received_model;   // the global model it received, measured on its data
};

// A "global" line: a global model's figures (mean over sites).
struct GlobalRound {
  int64_t round = 0;  // rounds completed (0: the initial model)
  Figures figures;    // val_acc, test_loss, round_seconds, images_per_s, ...
  bool best = false;
  std::string model;  // its file in models/, empty when not saved
};

// A "train_step" line: a site's training figures at one optimizer step.
struct TrainStep {
  std::string site;
  int64_t round = 0;
  int64_t step = 0;  // counted from the start of the job
  Figures figures;   // train_loss, images_per_s, any other reported scalar
};

// An "aggregator" line: the aggregator's own figures for a round.
struct AggregatorRound {
  int64_t round = 0;
  Figures figures;
};

// The "job" line: how the run ended.
struct JobEnd {
  std::string status;  // "succeeded" or "failed"
  std::string reason;  // why it failed
  int64_t rounds_completed = 0;
};

struct RunRecord {
  std::vector<SiteRound> site_rounds;
  std::vector<GlobalRound> global_rounds;
  std::vector<TrainStep> train_steps;
  std::vector<AggregatorRound> aggregator_rounds;
  std::vector<std::string> failures;  // "failure" lines, in words
  std::vector<std::string> warnings;  // "warning" lines' messages
  std::optional<JobEnd> end;          // none yet: running, or killed
  int64_t unreadable_lines = 0;       // not JSON objects, or a kind's keys missing
};

// The record of `metrics_file`, in the order of its lines; empty when the
// file does not exist. Lines of kinds it does not know are skipped.
RunRecord read_run_record(const std::filesystem::path& metrics_file);

}  // namespace flare::report
