// How flare-admin shows jobs: the list's table and one job's fields.
#include <doctest/doctest.h>

#include "admin/job_display.hpp"

using namespace flare::admin;
namespace v1 = flare::deploy::v1;

namespace {

v1::JobSummary job(const std::string& id, const std::string& name, const std::string& state) {
  v1::JobSummary j;
  j.set_job_id(id);
  j.set_name(name);
  j.set_state(state);
  j.set_rounds_done(3);
  j.set_num_rounds(5);
  j.add_sites("site-1");
  j.add_sites("site-2");
  return j;
}

}  // namespace

TEST_CASE("the job list is a table with aligned columns") {
  const auto table = job_table({job("j1", "cifar10", "running"), job("job-22", "mnist", "queued")});
  CHECK(table ==
        "ID      NAME     STATE    ROUNDS  SITES\n"
        "j1      cifar10  running  3/5     site-1, site-2\n"
        "job-22  mnist    queued   3/5     site-1, site-2\n");
  CHECK(job_table({}) == "no jobs\n");
}

TEST_CASE("a job's fields are shown with its times in UTC, and only those it has") {
  auto j = job("j1", "cifar10", "failed");
  j.set_submitted_by("admin@org.com");
  j.set_submitted_at(1700000000);
  j.set_ended_at(1700000060);
  j.set_failure("site-2 refused the job");
  const auto text = job_details(j);
  CHECK(text.find("state:        failed\n") != std::string::npos);
  CHECK(text.find("rounds:       3 of 5\n") != std::string::npos);
  CHECK(text.find("submitted:    2023-11-14 22:13:20 UTC by admin@org.com\n") != std::string::npos);
  CHECK(text.find("ended:        2023-11-14 22:14:20 UTC\n") != std::string::npos);
  CHECK(text.find("failure:      site-2 refused the job\n") != std::string::npos);
  CHECK(text.find("started") == std::string::npos);
  CHECK(text.find("port") == std::string::npos);
}

TEST_CASE("text from the server cannot drive the terminal") {
  auto j = job("j1\x1b[2J", "name\r", "running");
  j.set_failure("\x1b]0;owned\x07");
  CHECK(job_table({j}).find('\x1b') == std::string::npos);
  CHECK(job_details(j).find('\x1b') == std::string::npos);
  CHECK(job_details(j).find('\r') == std::string::npos);
}

TEST_CASE("only finished, failed and aborted jobs are over") {
  CHECK(job_is_over(job("j", "n", "finished")));
  CHECK(job_is_over(job("j", "n", "failed")));
  CHECK(job_is_over(job("j", "n", "aborted")));
  CHECK_FALSE(job_is_over(job("j", "n", "running")));
  CHECK_FALSE(job_is_over(job("j", "n", "queued")));
}

TEST_CASE("a job a restarted server resumed says after which round, in the list and its fields") {
  auto resumed = job("job-3", "cifar10", "running");
  resumed.set_resumed_after_round(2);
  CHECK(job_table({resumed, job("job-4", "mnist", "queued")}) ==
        "ID     NAME     STATE                            ROUNDS  SITES\n"
        "job-3  cifar10  running (resumed after round 2)  3/5     site-1, site-2\n"
        "job-4  mnist    queued                           3/5     site-1, site-2\n");
  CHECK(job_details(resumed).find("state:        running (resumed after round 2)\n") !=
        std::string::npos);
  CHECK(job_details(job("job-4", "mnist", "queued")).find("resumed") == std::string::npos);
}
