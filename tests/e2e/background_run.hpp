// For end-to-end tests that signal the programs while they run (SIGSTOP,
// SIGKILL, SIGTERM; the programs are started with common::ChildProcess):
// stand-ins that only wait to be stopped, and the processes left behind.
#pragma once

#include <filesystem>
#include <string>
#include <vector>


namespace flare::e2e {

// Waits up to `timeout_s` until no live process's command line mentions
// `needle`; false when one still does. Kills what is left either way, so a
// failing test leaves nothing running.
bool all_gone_within(const std::string& needle, double timeout_s);

// A copy of flare-run's folder in `dir`/bin where `program` ("flare-client"
// or "flare-worker") is a stand-in that only waits to be stopped (a program
// still starting, or a site that never registers). Returns the folder.
std::filesystem::path programs_with_waiting(const std::filesystem::path& dir,
                                            const std::string& program);

// Waits up to `timeout_s` for `file` to exist.
bool wait_for_file(const std::filesystem::path& file, double timeout_s);

// The text of `file` ("" when it cannot be read).
std::string read_text(const std::filesystem::path& file);

}  // namespace flare::e2e
