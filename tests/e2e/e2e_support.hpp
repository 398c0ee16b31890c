// Running the real binaries from tests and reading what they leave behind.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "temp_folder.hpp"

namespace flare::e2e {

using testing::TempFolder;

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Runs `args` (argv[0] a path) with a wall-clock limit; never throws for a
// non-zero exit.
CommandResult run_command(const std::vector<std::string>& args, int timeout_s = 300);


void write_text(const std::filesystem::path& file, const std::string& text);
std::vector<nlohmann::json> read_json_lines(const std::filesystem::path& file);

// PIDs of live processes whose command line mentions `needle`.
std::vector<int> processes_mentioning(const std::string& needle);

}  // namespace flare::e2e
