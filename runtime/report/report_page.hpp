// report.html: one self-contained page per run (no script, no font, no image
// fetched: it opens from a copied folder, offline) with the run's charts,
// tables of its rounds, failures, model files and resolved job.toml.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "report/run_record.hpp"

namespace flare::report {

// What the page shows besides metrics.jsonl, read from the run folder.
struct RunFolder {
  std::filesystem::path root;
  std::string job_toml;  // as written; empty when missing
  std::string job_name, key_metric, key_metric_mode;  // from job.toml, empty when unknown
  struct ModelFile {
    std::string name;  // in models/
    uintmax_t bytes = 0;
  };
  std::vector<ModelFile> models;  // by name
};

RunFolder read_run_folder(const std::filesystem::path& root);

// The charts lie at fixed places (two columns under a fixed-height header),
// so a page can be checked by its pixels; each chart's box says where it is
// on the page (data-page-left, data-page-top).
inline constexpr int kHeaderHeight = 120;
inline constexpr int kChartGap = 16;
inline constexpr int kChartColumns = 2;

std::string render_report(const RunRecord& record, const RunFolder& folder);

// Reads `run_dir`'s metrics.jsonl and files and replaces `run_dir`/report.html
// atomically with the page; returns its path. Throws storage::StorageError
// when it cannot be written.
std::filesystem::path write_run_report(const std::filesystem::path& run_dir);

}  // namespace flare::report
