// common::ChildProcess: a started program's output lands in its log, its end is
// reported as exit code or signal, stop() escalates to SIGKILL, and no exit
// path leaves the child behind.
#include "common/child_process.hpp"

#include <doctest/doctest.h>

#include <csignal>
#include <thread>

#include <sys/wait.h>

#include "temp_folder.hpp"

using flare::common::ChildProcess;
using flare::testing::TempFolder;
using flare::testing::read_bytes;
using flare::testing::write_bytes;
using namespace std::chrono_literals;

namespace {

ChildProcess shell(const std::string& script, const std::filesystem::path& log) {
  return ChildProcess({"/bin/sh", "-c", script}, log);
}

// True while `pid` names a process that has not been reaped.
bool exists(pid_t pid) { return ::kill(pid, 0) == 0; }

}  // namespace

TEST_CASE("a child's stdout and stderr are appended to its log and its exit code reported") {
  TempFolder dir;
  write_bytes(dir / "child.log", "earlier line\n");
  auto child = shell("echo out; echo err >&2; exit 3", dir / "child.log");
  const auto status = child.wait_for(10s);
  REQUIRE(status);
  CHECK(status->exit_code == 3);
  CHECK_FALSE(status->signal);
  CHECK_FALSE(status->success());
  CHECK(status->describe() == "exit code 3");
  CHECK(read_bytes(dir / "child.log") == "earlier line\nout\nerr\n");
}

TEST_CASE("a child killed by a signal is reported with the signal's name") {
  TempFolder dir;
  auto child = shell("kill -SEGV $$", dir / "child.log");
  const auto status = child.wait_for(10s);
  REQUIRE(status);
  CHECK(status->signal == SIGSEGV);
  CHECK(status->describe() == "killed by signal 11 (SIGSEGV)");
}

TEST_CASE("poll answers at once while the child runs and keeps the status once it ended") {
  TempFolder dir;
  auto child = shell("read line", dir / "child.log");  // stdin is /dev/null: ends at once
  CHECK(child.wait_for(10s));
  auto sleeper = shell("sleep 30", dir / "sleeper.log");
  CHECK_FALSE(sleeper.poll());
  CHECK_FALSE(sleeper.wait_for(50ms));
  sleeper.signal(SIGTERM);
  const auto first = sleeper.wait_for(10s);
  REQUIRE(first);
  CHECK(first->signal == SIGTERM);
  const auto again = sleeper.poll();  // already reaped: the same answer, no waitpid error
  REQUIRE(again);
  CHECK(again->signal == SIGTERM);
}

TEST_CASE("stop sends SIGKILL to a child that ignores SIGTERM, after the grace period") {
  TempFolder dir;
  auto child = shell("trap '' TERM; echo ready; while :; do sleep 1; done", dir / "child.log");
  while (read_bytes(dir / "child.log").empty()) std::this_thread::sleep_for(10ms);
  const auto started = std::chrono::steady_clock::now();
  const auto status = child.stop(300ms);
  const auto took = std::chrono::steady_clock::now() - started;
  CHECK(status.signal == SIGKILL);
  CHECK(took >= 300ms);
  CHECK_FALSE(exists(child.pid()));
}

TEST_CASE("stop ends a stopped child at once: it is continued to act on SIGTERM") {
  TempFolder dir;
  // It handles SIGTERM itself (as flare-client does), so while stopped the
  // signal waits: only SIGCONT lets it act.
  auto child = shell("trap 'exit 7' TERM; echo ready; while :; do sleep 0.1; done",
                     dir / "child.log");
  while (read_bytes(dir / "child.log").empty()) std::this_thread::sleep_for(10ms);
  REQUIRE(::kill(child.pid(), SIGSTOP) == 0);
  const auto started = std::chrono::steady_clock::now();
  const auto status = child.stop(5s);
  CHECK(std::chrono::steady_clock::now() - started < 2s);  // not the 5 s grace
  CHECK(status.exit_code == 7);
}

TEST_CASE("destroying the handle stops and reaps a running child") {
  TempFolder dir;
  pid_t pid = -1;
  {
    auto child = shell("sleep 30", dir / "child.log");
    pid = child.pid();
    CHECK(exists(pid));
  }
  CHECK_FALSE(exists(pid));  // reaped too: a zombie would still answer kill(pid, 0)
}

TEST_CASE("a moved-from handle no longer owns the child") {
  TempFolder dir;
  auto first = shell("sleep 30", dir / "child.log");
  const pid_t pid = first.pid();
  {
    ChildProcess second(std::move(first));
    CHECK(second.pid() == pid);
  }  // `second` stops it; destroying `first` later must not touch that pid again
  CHECK_FALSE(exists(pid));
}

TEST_CASE("a program that cannot be started is an error naming it") {
  TempFolder dir;
  try {
    ChildProcess({"/nonexistent/flare-program"}, dir / "child.log");
    FAIL("expected an error");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()).find("/nonexistent/flare-program") != std::string::npos);
  }
}
