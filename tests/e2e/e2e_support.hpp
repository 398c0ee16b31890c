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

// A job of `sites` sites running the plain-C trainer (tests/e2e/fixtures)
// with fedavg. `trainer_config` goes into [trainer.config], `worker_group`
// into [clients] (devices, nodes, max_restarts, ...; default devices = 2).
std::string c_trainer_job(const std::filesystem::path& workspace, int rounds,
                          const std::string& trainer_config,
                          const std::string& worker_group = "devices = 2", int sites = 2);

// The first float of the single tensor in a safetensors model file.
float first_weight(const std::filesystem::path& model);

}  // namespace flare::e2e
