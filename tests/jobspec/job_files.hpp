// Test support: job files written into a fresh temporary folder, and the
// message a failing call (or a broken job file) gives.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <stdexcept>
#include <string>

#include "jobspec/job_spec.hpp"
#include "temp_folder.hpp"

// What every job must name, its trainer and its data (here cifar10 and
// ./data), for tests about the other keys.
inline constexpr const char* kTrainerAndData =
    "[trainer]\nplugin = \"cifar10\"\n[data]\ndir = \"data\"\n";

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

  // A job file: `text` followed by kTrainerAndData.
  std::filesystem::path write_job(const std::filesystem::path& relative,
                                  const std::string& text) const {
    return write(relative, text + kTrainerAndData);
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

// The message load_job throws for a job file holding `text`, with the file's
// path replaced by "job.toml" so expectations stay short.
inline std::string error_for(const std::string& text) {
  const JobFolder folder;
  const auto file = folder.write("job.toml", text);
  std::string message =
      message_of<flare::jobspec::JobSpecError>([&] { flare::jobspec::load_job(file); });
  if (message.starts_with(file.string())) message.replace(0, file.string().size(), "job.toml");
  return message;
}
