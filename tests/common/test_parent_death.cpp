// common::exit_when_parent_dies with real processes: a flare program leaves as
// soon as the process that started it is gone, whether that died before the
// program could look (still loading) or while the program was stopped.
#include "common/local_host.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <csignal>
#include <fstream>
#include <optional>
#include <thread>

#include <sys/prctl.h>
#include <sys/wait.h>

#include "common/child_process.hpp"
#include "temp_folder.hpp"

using flare::common::ChildProcess;
using flare::testing::TempFolder;
using namespace std::chrono_literals;

namespace {

// Orphans are handed to this process, so the test can reap them and see them go.
const bool kAdoptsOrphans = ::prctl(PR_SET_CHILD_SUBREAPER, 1) == 0;

bool wait_for_file(const std::filesystem::path& file, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!std::filesystem::exists(file)) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

pid_t read_pid(const std::filesystem::path& file) {
  pid_t pid = -1;
  std::ifstream(file) >> pid;
  return pid;
}

// Kills the launcher and waits up to `timeout` for its child `pid`, adopted
// by this process, to end: how it ended, or nullopt when it did not (then it
// is killed, so a failing test leaves nothing behind).
std::optional<int> kill_launcher_and_wait(ChildProcess& launcher, pid_t pid,
                                          std::chrono::milliseconds timeout) {
  launcher.signal(SIGKILL);
  REQUIRE(launcher.wait_for(5s));
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) return status;
    if (std::chrono::steady_clock::now() > deadline) break;
    std::this_thread::sleep_for(10ms);
  }
  if (::kill(pid, SIGKILL) == 0) ::waitpid(pid, nullptr, 0);
  return std::nullopt;
}

ChildProcess launcher(const TempFolder& dir, int child_delay_ms) {
  return ChildProcess({PARENT_WATCH_BIN, "launcher", std::to_string(child_delay_ms),
                       dir.path().string()},
                      dir / "launcher.log");
}

}  // namespace

TEST_CASE("a program whose launcher died while it was still loading exits as it starts") {
  REQUIRE(kAdoptsOrphans);
  TempFolder dir;
  auto parent = launcher(dir, 1000);  // the child looks 1 s after it started
  REQUIRE(wait_for_file(dir / "child.pid", 10s));
  const auto ended = kill_launcher_and_wait(parent, read_pid(dir / "child.pid"), 5s);
  REQUIRE_MESSAGE(ended, "the orphan still runs 5 s after its launcher was killed");
  CHECK(WIFEXITED(*ended));
  CHECK_FALSE(std::filesystem::exists(dir / "watching"));
}

TEST_CASE("a stopped program leaves at once when its launcher is killed") {
  REQUIRE(kAdoptsOrphans);
  TempFolder dir;
  auto parent = launcher(dir, 0);
  REQUIRE(wait_for_file(dir / "watching", 10s));
  const pid_t child = read_pid(dir / "child.pid");
  REQUIRE(::kill(child, SIGSTOP) == 0);
  const auto ended = kill_launcher_and_wait(parent, child, 2s);
  REQUIRE_MESSAGE(ended, "the stopped orphan still exists 2 s after its launcher was killed");
  CHECK(WIFSIGNALED(*ended));
  CHECK(WTERMSIG(*ended) == SIGKILL);
}

TEST_CASE("a program keeps running while its launcher lives") {
  TempFolder dir;
  auto child = ChildProcess({PARENT_WATCH_BIN, "child", "0", dir.path().string()},
                            dir / "child.log");
  REQUIRE(wait_for_file(dir / "watching", 10s));
  CHECK_FALSE(child.wait_for(300ms));
}
