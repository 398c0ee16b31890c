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

// Bounds on how long a whole run may take are multiplied by this: sanitized
// processes (gcc's -fsanitize=address, the build-asan tree) start and stop
// several times slower; such bounds tell a contained failure from a hang
// (minutes), not fast from slow.
#ifdef __SANITIZE_ADDRESS__
inline constexpr double kRunTimeScale = 3;
#else
inline constexpr double kRunTimeScale = 1;
#endif

// Runs `args` (argv[0] a path) with a wall-clock limit; never throws for a
// non-zero exit.
CommandResult run_command(const std::vector<std::string>& args, int timeout_s = 300);

// A command's result and how long it ran, for the bounds a failure must meet.
struct TimedRun {
  CommandResult result;
  double seconds = 0;
};
TimedRun run_timed(const std::vector<std::string>& args, int timeout_s = 300);

// Whether `text` contains `what` (for the messages that are a contract).
bool mentions(const std::string& text, const std::string& what);


void write_text(const std::filesystem::path& file, const std::string& text);
std::vector<nlohmann::json> read_json_lines(const std::filesystem::path& file);

// The lines of one kind ("site", "global", "failure", "job") in the
// metrics.jsonl of `run` (a workspace's run-N folder).
std::vector<nlohmann::json> lines_of_kind(const std::filesystem::path& run,
                                          const std::string& kind);

// How many "failure" lines of `run` hold every field of `fields`, e.g.
// {{"rank", 1}, {"action", "restart"}}; a "cause" field is matched key by key.
int failures_matching(const std::filesystem::path& run, const nlohmann::json& fields);

// The run's one "job" line, or null when it has none or several.
nlohmann::json job_line(const std::filesystem::path& run);

// PIDs of live processes whose command line has every one of `arguments`
// within its arguments (each one inside a single argument).
std::vector<int> processes_with(const std::vector<std::string>& arguments);

// PIDs of live processes whose command line mentions `needle`.
std::vector<int> processes_mentioning(const std::string& needle);

// The command line of the process behind `proc_entry` (/proc/<pid>), its
// arguments NUL-separated; "" when the process is gone.
std::string command_line(const std::filesystem::path& proc_entry);

// How often `text` occurs in `file` (0 when there is no such file).
int occurrences(const std::filesystem::path& file, const std::string& text);

// Waits up to `timeout_s` for `file` to hold `text` at least `count` times.
bool wait_for_text(const std::filesystem::path& file, const std::string& text, int count = 1,
                   double timeout_s = 60);

// A copy of flare-run in `dir`/bin whose flare-client never starts node
// `node` of a multi-node site, as if that node's host were down: its stand-in
// only waits to be stopped. Returns the copy's path.
std::filesystem::path flare_run_with_node_down(const std::filesystem::path& dir, int node);

// A job of `sites` sites running the plain-C trainer (tests/e2e/fixtures)
// with fedavg (`aggregator`: the [aggregator] table's body, another plugin). `trainer_config` goes into [trainer.config], `worker_group`
// into [clients] (devices, nodes, max_restarts, ...; default devices = 2).
std::string c_trainer_job(const std::filesystem::path& workspace, int rounds,
                          const std::string& trainer_config,
                          const std::string& worker_group = "devices = 2", int sites = 2,
                          const std::string& aggregator = "plugin = \"fedavg\"");

// The first float of the single tensor in a safetensors model file.
float first_weight(const std::filesystem::path& model);

}  // namespace flare::e2e
