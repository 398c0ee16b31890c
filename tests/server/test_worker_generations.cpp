// The generations of the sites' worker groups, as the server hands them out:
// a group registers once per generation, a reported restart opens the next,
// and only the current, handed-out generation's requests are accepted.
#include <doctest/doctest.h>

#include "server/domain.hpp"
#include "server/worker_generations.hpp"

using flare::server::RejectedRequest;
using flare::server::WorkerGenerations;

namespace {

std::string refusal(const WorkerGenerations& generations, int64_t generation) {
  try {
    generations.require_current("a", generation, "update");
  } catch (const RejectedRequest& e) {
    return e.what();
  }
  return "accepted";
}

}  // namespace

TEST_CASE("a site's first registration is handed generation 0, and only it is accepted") {
  WorkerGenerations generations({"a", "b"});
  // A request before any registration (or to a restarted server) is told to register.
  CHECK(refusal(generations, 0) ==
        "update from a refused: this server holds no registration of its worker group "
        "generation 0 (not registered yet, or the server restarted since); register again");
  CHECK_THROWS_AS(generations.require_current("a", 7, "update"), flare::server::RegisterAgain);
  CHECK(generations.hand_out("a") == 0);
  CHECK(refusal(generations, 0) == "accepted");
  CHECK(refusal(generations, 99) ==
        "update from a refused: it claims worker group generation 99, which the server has not "
        "handed out (the site's is 0)");
  CHECK(refusal(generations, -1).find("generation -1") != std::string::npos);
  CHECK_FALSE(generations.is_current("b", 0));
}

TEST_CASE("a restart supersedes a registered group; the restarted group registers as the next") {
  WorkerGenerations generations({"a"});
  REQUIRE(generations.hand_out("a") == 0);
  generations.supersede("a");
  CHECK(generations.current("a") == 1);
  CHECK(refusal(generations, 0) ==
        "update from a's worker group generation 0 refused: the site now runs generation 1");
  CHECK(refusal(generations, 1).find("not registered yet") != std::string::npos);
  CHECK(generations.hand_out("a") == 1);
  CHECK(refusal(generations, 1) == "accepted");
}

TEST_CASE("a site registering again while its group runs supersedes it (it lost the server a while)") {
  WorkerGenerations generations({"a"});
  REQUIRE(generations.hand_out("a") == 0);
  CHECK(generations.hand_out("a") == 1);
  CHECK(refusal(generations, 1) == "accepted");
  CHECK(refusal(generations, 0) ==
        "update from a's worker group generation 0 refused: the site now runs generation 1");
}

TEST_CASE("a dropped group is told to register again, and its next registration is accepted") {
  WorkerGenerations generations({"a"});
  REQUIRE(generations.hand_out("a") == 0);
  generations.drop("a", "silent for 3.0 s");
  CHECK_THROWS_WITH_AS(generations.require_current("a", 0, "heartbeat"),
                       "heartbeat from a refused: the server dropped its worker group generation "
                       "0 (silent for 3.0 s); register again",
                       flare::server::RegisterAgain);
  CHECK(generations.hand_out("a") == 1);
  CHECK(refusal(generations, 1) == "accepted");
  // Once it registered again, the dropped generation is only superseded.
  CHECK(refusal(generations, 0) ==
        "update from a's worker group generation 0 refused: the site now runs generation 1");
  generations.drop("a", "gone");
  generations.drop("a", "gone again");  // nothing runs: a no-op
  CHECK(generations.current("a") == 2);
}

TEST_CASE("a group that failed before it registered restarts as the next generation") {
  WorkerGenerations generations({"a"});
  generations.supersede("a");  // its supervisor reported generation 0's failure
  CHECK(generations.hand_out("a") == 1);
}

TEST_CASE("a site the job does not know is refused by name") {
  WorkerGenerations generations({"a"});
  CHECK_THROWS_WITH_AS(generations.hand_out("z"), "unknown site 'z'", RejectedRequest);
  CHECK_THROWS_WITH_AS(generations.current("z"), "unknown site 'z'", RejectedRequest);
  CHECK_THROWS_AS(generations.require_current("z", 0, "update"), RejectedRequest);
}
