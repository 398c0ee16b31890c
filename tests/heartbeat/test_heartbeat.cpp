// The heartbeat a rank writes and its supervisor reads: what counts as hung.
#include <doctest/doctest.h>

#include <string>
#include <thread>

#include "temp_folder.hpp"
#include "heartbeat/heartbeat.hpp"

using namespace flare::heartbeat;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

HeartbeatReading reading(RankState state, Clock::time_point last_progress) {
  HeartbeatReading r;
  r.state = state;
  r.last_progress = last_progress;
  return r;
}

}  // namespace

TEST_CASE("a busy rank quiet for longer than the timeout counts as hung") {
  const auto now = Clock::now();
  const auto quiet = hung_for(reading(RankState::Busy, now - 3s), now, 2s);
  REQUIRE(quiet.has_value());
  CHECK(quiet->count() == doctest::Approx(3.0));
}

TEST_CASE("a busy rank that made progress within the timeout is not hung") {
  const auto now = Clock::now();
  CHECK_FALSE(hung_for(reading(RankState::Busy, now - 1s), now, 2s).has_value());
}

TEST_CASE("a rank waiting for its next task is never hung however long it waits") {
  const auto now = Clock::now();
  CHECK_FALSE(hung_for(reading(RankState::Idle, now - 24h), now, 2s).has_value());
}

TEST_CASE("a rank that is still starting is left to the server's start timeout") {
  const auto now = Clock::now();
  CHECK_FALSE(hung_for(reading(RankState::Starting, now - 24h), now, 2s).has_value());
}

TEST_CASE("a timeout of zero turns hang detection off") {
  const auto now = Clock::now();
  CHECK_FALSE(hung_for(reading(RankState::Busy, now - 24h), now, 0s).has_value());
}

TEST_CASE("what a rank writes through its mapping the supervisor reads through its own") {
  flare::testing::TempFolder dir;
  auto supervisor = HeartbeatFile::create(dir.path() / "heartbeat");
  CHECK(supervisor.read().state == RankState::Starting);
  auto rank = HeartbeatFile::open(dir.path() / "heartbeat");
  const auto before = Clock::now();
  rank.set_state(RankState::Busy);
  auto seen = supervisor.read();
  CHECK(seen.state == RankState::Busy);
  CHECK(seen.last_progress >= before);
  rank.set_fatal_error("train failed: the disk is full", false);
  CHECK(supervisor.read().fatal_error == "train failed: the disk is full");
  CHECK_FALSE(supervisor.read().failed_in_collective);
  rank.set_fatal_error("all_reduce failed", true);
  CHECK(supervisor.read().failed_in_collective);
}

TEST_CASE("progress moves the last-progress time forward without changing the state") {
  flare::testing::TempFolder dir;
  auto supervisor = HeartbeatFile::create(dir.path() / "heartbeat");
  auto rank = HeartbeatFile::open(dir.path() / "heartbeat");
  rank.set_state(RankState::Busy);
  const auto first = supervisor.read().last_progress;
  std::this_thread::sleep_for(2ms);
  rank.progress();
  const auto seen = supervisor.read();
  CHECK(seen.state == RankState::Busy);
  CHECK(seen.last_progress > first);
}

TEST_CASE("a recreated heartbeat forgets the earlier rank's state and error") {
  flare::testing::TempFolder dir;
  auto old_rank_view = HeartbeatFile::create(dir.path() / "heartbeat");
  old_rank_view.set_state(RankState::Busy);
  old_rank_view.set_fatal_error("old failure", true);
  auto fresh = HeartbeatFile::create(dir.path() / "heartbeat");
  const auto seen = fresh.read();
  CHECK(seen.state == RankState::Starting);
  CHECK(seen.fatal_error.empty());
  CHECK_FALSE(seen.failed_in_collective);
  CHECK(hung_for(seen, Clock::now() + 24h, 2s) == std::nullopt);
}

TEST_CASE("a fatal error longer than the heartbeat holds is cut, not overflowed") {
  flare::testing::TempFolder dir;
  auto hb = HeartbeatFile::create(dir.path() / "heartbeat");
  hb.set_fatal_error(std::string(10000, 'x'), false);
  const auto said = hb.read().fatal_error;
  CHECK(said.size() < 10000);
  CHECK(said.size() > 1000);
  CHECK(said.find_first_not_of('x') == std::string::npos);
}

TEST_CASE("opening a heartbeat its supervisor never created fails with the path") {
  flare::testing::TempFolder dir;
  const auto missing = dir.path() / "nowhere" / "heartbeat";
  try {
    (void)HeartbeatFile::open(missing);
    FAIL("expected an error");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()).find(missing.string()) != std::string::npos);
  }
}
