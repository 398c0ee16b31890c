#include "background_run.hpp"

#include <chrono>
#include <csignal>
#include <fstream>
#include <iterator>
#include <thread>

#include "e2e_support.hpp"

namespace flare::e2e {

namespace fs = std::filesystem;

bool all_gone_within(const std::string& needle, double timeout_s) {
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
  while (!processes_mentioning(needle).empty()) {
    if (std::chrono::steady_clock::now() > deadline) {
      for (const int pid : processes_mentioning(needle)) ::kill(pid, SIGKILL);
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

fs::path programs_with_waiting(const fs::path& dir, const std::string& program) {
  // Programs find each other beside themselves (the real path of
  // /proc/self/exe, so copies, not links), and plugins in ../plugins.
  const fs::path real = fs::path(FLARE_RUN_BIN).parent_path();
  const fs::path bin = dir / "bin";
  fs::create_directories(bin);
  for (const char* name : {"flare-run", "flare-client"})
    if (name != program) fs::copy_file(real / name, bin / name);
  if (program != "flare-worker") fs::create_symlink(real / "flare-worker", bin / "flare-worker");
  fs::create_directory_symlink(real.parent_path() / "plugins", dir / "plugins");
  write_text(bin / program, "#!/bin/sh\nexec sleep 60\n");
  fs::permissions(bin / program, fs::perms::owner_all, fs::perm_options::add);
  return bin;
}

bool wait_for_file(const fs::path& file, double timeout_s) {
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
  while (!fs::exists(file)) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

std::string read_text(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace flare::e2e
