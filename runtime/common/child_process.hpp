// A child program started with posix_spawn (never fork: LibTorch's thread pools
// make forking an initialised process unsafe). The handle owns the process:
// destroying it stops and reaps the child, so no exit path leaves one behind.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

namespace flare::common {

// Every child's environment holds this variable with the pid of the process
// that started it, so a flare program can tell that its launcher is gone even
// when it died before the child could look (exit_when_parent_dies).
inline constexpr const char* kParentPidVariable = "FLARE_PARENT_PID";

// How a child ended: exactly one of exit_code / signal is set.
struct ExitStatus {
  std::optional<int> exit_code;
  std::optional<int> signal;
  bool success() const { return exit_code && *exit_code == 0; }
  std::string describe() const;  // "exit code 3" / "killed by signal 9 (SIGKILL)"
};

class ChildProcess {
 public:
  // Starts `argv[0]` (a path) with `argv`; stdout and stderr go to `log_file`
  // (appended). Throws std::runtime_error when the program cannot be started.
  // Start children from a thread that outlives them (the main thread): the
  // kernel's parent-death signal, which flare programs ask for, follows the
  // thread that started the child, not the process.
  ChildProcess(const std::vector<std::string>& argv, const std::filesystem::path& log_file);
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&&) = delete;
  ChildProcess(const ChildProcess&) = delete;
  ~ChildProcess();

  pid_t pid() const { return pid_; }
  const std::filesystem::path& log_file() const { return log_file_; }
  // Non-blocking: the status once the child has ended.
  std::optional<ExitStatus> poll();
  // Blocks up to `timeout`; nullopt if still running.
  std::optional<ExitStatus> wait_for(std::chrono::milliseconds timeout);
  // Whether the running child is stopped (SIGSTOP, SIGTSTP, a debugger): it
  // acts on no signal but SIGKILL until it is continued.
  bool stopped();
  // Sends `signal` unless the child has already ended.
  void signal(int signal);
  // SIGTERM (with SIGCONT, so a stopped child acts on it), then SIGKILL after
  // `grace`; always reaps. Returns how it ended.
  ExitStatus stop(std::chrono::milliseconds grace = std::chrono::milliseconds(3000));

 private:
  pid_t pid_ = -1;
  std::optional<ExitStatus> status_;
  std::filesystem::path log_file_;
};

// Stops every child at once: SIGTERM (and SIGCONT) to all, SIGKILL to those
// still running after `grace`, then reaps all. Bounded by `grace` however many
// there are (one stop() after another would take up to grace each).
void stop_together(const std::vector<ChildProcess*>& children,
                   std::chrono::milliseconds grace = std::chrono::milliseconds(3000));

}  // namespace flare::common
