// Which failed rank the supervisor blames when several go down together.
#include <doctest/doctest.h>

#include "client/worker_group.hpp"

using flare::client::Blame;
using flare::client::blame_for;
using flare::common::ExitStatus;
using flare::heartbeat::HeartbeatReading;

namespace {

ExitStatus exited(int code) { return ExitStatus{code, std::nullopt}; }
ExitStatus killed(int signal) { return ExitStatus{std::nullopt, signal}; }
HeartbeatReading said(bool in_collective) {
  HeartbeatReading r;
  r.fatal_error = "boom";
  r.failed_in_collective = in_collective;
  return r;
}

}  // namespace

TEST_CASE("a rank that exited cleanly is not blamed") {
  CHECK(blame_for(exited(0), said(false)) == Blame::None);
}

TEST_CASE("a rank killed by a signal outweighs one whose own code failed") {
  CHECK(blame_for(killed(9), said(false)) > blame_for(exited(1), said(false)));
}

TEST_CASE("a rank whose own code failed outweighs one whose collective broke") {
  CHECK(blame_for(exited(1), said(false)) == Blame::OwnError);
  CHECK(blame_for(exited(1), said(true)) == Blame::Collective);
  CHECK(Blame::OwnError > Blame::Collective);
}

TEST_CASE("a rank that exited without saying why counts as its own failure") {
  CHECK(blame_for(exited(3), HeartbeatReading{}) == Blame::OwnError);
}
