#include "child_process.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <iterator>
#include <spawn.h>
#include <stdexcept>
#include <string_view>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

extern char** environ;

namespace flare::common {

std::string ExitStatus::describe() const {
  if (exit_code) return "exit code " + std::to_string(*exit_code);
  if (signal) {
    const char* name = sigabbrev_np(*signal);
    return "killed by signal " + std::to_string(*signal) +
           (name ? std::string(" (SIG") + name + ")" : std::string());
  }
  return "unknown status";
}

namespace {

ExitStatus decode(int raw) {
  ExitStatus s;
  if (WIFEXITED(raw)) s.exit_code = WEXITSTATUS(raw);
  else if (WIFSIGNALED(raw)) s.signal = WTERMSIG(raw);
  return s;
}

// This process's environment with kParentPidVariable set to this process.
std::vector<std::string> child_environment() {
  const std::string prefix = std::string(kParentPidVariable) + "=";
  std::vector<std::string> env;
  for (char** var = environ; *var; ++var)
    if (std::string_view(*var).substr(0, prefix.size()) != prefix) env.emplace_back(*var);
  env.push_back(prefix + std::to_string(::getpid()));
  return env;
}

std::vector<char*> pointers_to(const std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (const auto& s : strings) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

}  // namespace

ChildProcess::ChildProcess(const std::vector<std::string>& argv,
                           const std::filesystem::path& log_file)
    : log_file_(log_file) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  const std::string log = log_file.string();
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(),
                                   O_WRONLY | O_CREAT | O_APPEND, 0600);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);

  const auto args = pointers_to(argv);
  const auto env_strings = child_environment();
  const auto env = pointers_to(env_strings);
  const int rc = posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), env.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    pid_ = -1;
    throw std::runtime_error("cannot start " + argv[0] + ": " + std::strerror(rc));
  }
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : pid_(other.pid_), status_(other.status_), log_file_(std::move(other.log_file_)) {
  other.pid_ = -1;
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0 && !status_) stop(std::chrono::milliseconds(2000));
}

std::optional<ExitStatus> ChildProcess::poll() {
  if (status_ || pid_ <= 0) return status_;
  int raw = 0;
  const pid_t r = waitpid(pid_, &raw, WNOHANG);
  if (r == pid_) status_ = decode(raw);
  return status_;
}

std::optional<ExitStatus> ChildProcess::wait_for(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!poll()) {
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return status_;
}

bool ChildProcess::stopped() {
  if (pid_ <= 0 || poll()) return false;
  // /proc/<pid>/stat: "pid (comm) state ...", where comm may hold anything.
  std::ifstream in("/proc/" + std::to_string(pid_) + "/stat");
  const std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto comm_end = stat.rfind(')');
  if (comm_end == std::string::npos || comm_end + 2 >= stat.size()) return false;
  const char state = stat[comm_end + 2];
  return state == 'T' || state == 't';
}

void ChildProcess::signal(int signal) {
  if (pid_ > 0 && !poll()) ::kill(pid_, signal);
}

ExitStatus ChildProcess::stop(std::chrono::milliseconds grace) {
  stop_together({this}, grace);
  return status_.value_or(ExitStatus{});
}

void stop_together(const std::vector<ChildProcess*>& children, std::chrono::milliseconds grace) {
  for (ChildProcess* child : children) {
    // A stopped child keeps SIGTERM pending until it is continued.
    child->signal(SIGTERM);
    child->signal(SIGCONT);
  }
  const auto deadline = std::chrono::steady_clock::now() + grace;
  for (ChildProcess* child : children) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (child->wait_for(std::max(left, std::chrono::milliseconds(0)))) continue;
    child->signal(SIGKILL);
    while (!child->wait_for(std::chrono::milliseconds(1000))) {
    }
  }
}

}  // namespace flare::common
