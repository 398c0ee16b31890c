// Test support: job files written into a fresh temporary folder, and the
// message a failing call throws.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <stdexcept>
#include <string>

#include "temp_folder.hpp"

class JobFolder {
 public:
  const std::filesystem::path& root() const { return folder_.path(); }

  // Writes `text` to root/relative (creating folders) and returns its path.
  std::filesystem::path write(const std::filesystem::path& relative,
                              const std::string& text) const {
    const auto file = root() / relative;
    std::filesystem::create_directories(file.parent_path());
    std::ofstream(file) << text;
    return file;
  }

 private:
  flare::testing::TempFolder folder_;
};

// Changes the current directory for the test's lifetime (resolution of --set paths).
class CurrentDirectory {
 public:
  explicit CurrentDirectory(const std::filesystem::path& dir)
      : previous_(std::filesystem::current_path()) {
    std::filesystem::current_path(dir);
  }
  ~CurrentDirectory() { std::filesystem::current_path(previous_); }

 private:
  std::filesystem::path previous_;
};

// The what() of the exception `call` throws, or "no error" when it returns.
template <typename Error>
std::string message_of(const std::function<void()>& call) {
  try {
    call();
  } catch (const Error& error) {
    return error.what();
  }
  return "no error";
}
