// The long-running server's job table: which queued job starts when, which
// node is offered what, and aborts in each state.
#include <doctest/doctest.h>

#include <thread>

#include "deploy/job_table.hpp"

using namespace flare::deploy;
using namespace std::chrono_literals;

namespace {

JobRecord job_on(std::vector<std::string> sites, std::map<std::string, int> nodes = {}) {
  JobRecord job;
  job.name = "test";
  job.job_toml = "[job]\nname = 'test'\n";
  job.sites = std::move(sites);
  for (const auto& site : job.sites) job.nodes[site] = nodes.count(site) ? nodes[site] : 1;
  return job;
}

JobRecord queue(JobTable& table, JobRecord job) {
  job.id = table.reserve_id();
  return table.add(std::move(job));
}

// A node's poll that does not wait.
std::optional<Offer> poll(JobTable& table, const std::string& site, int node = 0,
                          std::set<std::string> running = {}) {
  return table.poll(site, node, running, 0ms);
}

}  // namespace

TEST_CASE("a queued job starts once every site it names is online and idle") {
  JobTable table;
  const auto job = queue(table, job_on({"a", "b"}));
  CHECK(job.state == JobState::queued);
  CHECK_FALSE(table.next_to_start());
  CHECK(table.waiting_for(job.id) == "a is not online");
  CHECK_FALSE(poll(table, "a"));
  CHECK(table.waiting_for(job.id) == "b is not online");
  CHECK_FALSE(poll(table, "b"));
  const auto next = table.next_to_start();
  REQUIRE(next);
  CHECK(next->id == job.id);

  table.started(job.id, 9001);
  const auto offer = poll(table, "a");
  REQUIRE(offer);
  CHECK(offer->job_id == job.id);
  CHECK(offer->port == 9001);
  CHECK(offer->job_toml == job.job_toml);
  CHECK_FALSE(poll(table, "a", 0, {job.id}));  // each node is offered a job once
  CHECK(poll(table, "b"));
  CHECK(table.find(job.id)->state == JobState::running);
}

TEST_CASE("jobs on disjoint sites run side by side, jobs sharing a site one after another") {
  JobTable table;
  const auto on_a = queue(table, job_on({"a"}));
  const auto on_b = queue(table, job_on({"b"}));
  const auto on_both = queue(table, job_on({"a", "b"}));
  poll(table, "a");
  poll(table, "b");
  REQUIRE(table.next_to_start()->id == on_a.id);
  table.started(on_a.id, 1);
  REQUIRE(table.next_to_start()->id == on_b.id);
  table.started(on_b.id, 2);
  CHECK_FALSE(table.next_to_start());
  CHECK(table.waiting_for(on_both.id) == "a is running another job");

  table.ended(on_a.id, JobState::finished, "");
  // Site a still runs the job's clients until its node says otherwise.
  poll(table, "a", 0, {on_a.id});
  CHECK(table.waiting_for(on_both.id) == "a is running another job");
  poll(table, "a");
  CHECK(table.waiting_for(on_both.id) == "b is running another job");
  table.ended(on_b.id, JobState::failed, "it broke");
  poll(table, "b");
  REQUIRE(table.next_to_start());
  CHECK(table.next_to_start()->id == on_both.id);
  CHECK(table.find(on_b.id)->failure == "it broke");
}

TEST_CASE("a multi-node site is online only when every node polls") {
  JobTable table;
  const auto job = queue(table, job_on({"a"}, {{"a", 2}}));
  poll(table, "a", 0);
  CHECK(table.waiting_for(job.id) == "a (all 2 nodes) is not online");
  poll(table, "a", 1);
  REQUIRE(table.next_to_start());
  table.started(job.id, 7);
  CHECK(poll(table, "a", 0));
  CHECK(poll(table, "a", 1));  // each node gets its own offer
}

TEST_CASE("a node silent for longer than the online window is offline again") {
  JobTable table(50ms);
  const auto job = queue(table, job_on({"a"}));
  poll(table, "a");
  CHECK(table.waiting_for(job.id).empty());
  std::this_thread::sleep_for(120ms);
  CHECK(table.waiting_for(job.id) == "a is not online");
}

TEST_CASE("abort: a queued job ends at once, a running one goes to the runner, an ended one is refused") {
  JobTable table;
  const auto queued = queue(table, job_on({"a"}));
  const auto running = queue(table, job_on({"b"}));
  table.started(running.id, 3);
  std::string why;

  const auto aborted = table.request_abort(queued.id, "aborted by admin x", why);
  REQUIRE(aborted);
  CHECK(aborted->state == JobState::aborted);
  CHECK(aborted->failure == "aborted by admin x");
  CHECK(table.take_abort_requests().empty());

  REQUIRE(table.request_abort(running.id, "aborted by admin y", why));
  CHECK(table.find(running.id)->state == JobState::running);  // until its process ends
  const auto requests = table.take_abort_requests();
  REQUIRE(requests.size() == 1);
  CHECK(requests[0] == std::make_pair(running.id, std::string("aborted by admin y")));
  CHECK(table.take_abort_requests().empty());  // handed out once

  CHECK_FALSE(table.request_abort(queued.id, "again", why));
  CHECK(why == queued.id + " has already ended (aborted)");
  CHECK_FALSE(table.request_abort("job-99", "x", why));
  CHECK(why == "no job job-99");
}

TEST_CASE("ids never repeat and continue after the numbers already used") {
  JobTable table;
  table.set_next_id(7);
  CHECK(table.reserve_id() == "job-7");
  CHECK(queue(table, job_on({"a"})).id == "job-8");
}

TEST_CASE("a waiting poll is answered as soon as its job starts") {
  JobTable table;
  const auto job = queue(table, job_on({"a"}));
  poll(table, "a");
  std::thread starter([&] {
    std::this_thread::sleep_for(100ms);
    table.started(job.id, 5);
  });
  const auto began = std::chrono::steady_clock::now();
  const auto offer = table.poll("a", 0, {}, 10s);
  starter.join();
  REQUIRE(offer);
  CHECK(offer->job_id == job.id);
  CHECK(std::chrono::steady_clock::now() - began < 5s);
}

TEST_CASE("a resumed job is not offered to a node that still runs it, but is to one that does not") {
  JobTable table;
  JobRecord job = job_on({"a", "b"});
  job.id = "job-1";
  job.state = JobState::running;  // a restart read it back cut off (job_folder.hpp)
  job.port = 9001;
  job.resumed_after_round = 2;
  table.restore(job);
  CHECK_FALSE(poll(table, "a", 0, {"job-1"}));  // its client reconnects by itself
  const auto offer = poll(table, "b");          // its client was gone: offered afresh
  REQUIRE(offer);
  CHECK(offer->job_id == "job-1");
  CHECK(offer->port == 9001);
}
