// One log file per process, one named logger per component.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include <spdlog/spdlog.h>

namespace flare::common {

// A logger named `name` that writes to stderr (which a launcher points at the
// process's log file) with `tag` (e.g. "site-1 rank 0") in every line.
std::shared_ptr<spdlog::logger> make_logger(const std::string& name, const std::string& tag);

// A logger writing to `file` only (the server's log beside the terminal output).
std::shared_ptr<spdlog::logger> make_file_logger(const std::string& name,
                                                 const std::filesystem::path& file);

// The last `lines` lines of a text file, printable (common::printable, line
// breaks kept); "" when it cannot be read.
std::string read_log_tail(const std::filesystem::path& file, int lines);

}  // namespace flare::common
