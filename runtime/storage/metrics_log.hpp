// The run's metrics log: one JSON object per line (JSON Lines), appended and
// flushed record by record, so a crash loses at most the line being written and
// a resumed run continues the same file.
#pragma once

#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>

#include "storage/storage_error.hpp"

namespace flare::storage {

class MetricsLog {
 public:
  // Opens (creating it and its folder if needed) `file` for appending.
  explicit MetricsLog(std::filesystem::path file);

  // Writes `record` as one line and flushes it. Thread-safe. Throws StorageError.
  void append(const nlohmann::json& record);

  const std::filesystem::path& path() const { return file_; }

 private:
  std::filesystem::path file_;
  std::ofstream out_;
  std::mutex mutex_;
};

}  // namespace flare::storage
