// The worker group's rendezvous (collectives/store_rendezvous.hpp): bounded by
// rendezvous_timeout with a message naming who never came, and safe when a
// restarted group finds the store of the group before it still answering.
#include "collectives/process_group_collectives.hpp"

#include "rank_threads.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <future>
#include <string>
#include <thread>

namespace {

using flare::testing::loopback_group;
using flare::collectives::ProcessGroupCollectives;
using flare::collectives::ProcessGroupOptions;
using flare::collectives::RendezvousError;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

ProcessGroupOptions site_group(int port, int rank, int world_size, int64_t generation = 0) {
  auto options = loopback_group(port, rank, world_size);
  options.group_name = "site-1";
  options.ranks_per_node = 2;
  options.generation = generation;
  options.rendezvous_timeout = 500ms;
  return options;
}

std::future<std::unique_ptr<ProcessGroupCollectives>> join(const ProcessGroupOptions& options) {
  return std::async(std::launch::async,
                    [options] { return std::make_unique<ProcessGroupCollectives>(options); });
}

// The message the rendezvous failed with, and how long it took.
std::pair<std::string, double> failure_of(std::future<std::unique_ptr<ProcessGroupCollectives>> f) {
  const auto started = Clock::now();
  try {
    f.get();
  } catch (const RendezvousError& e) {
    return {e.what(), std::chrono::duration<double>(Clock::now() - started).count()};
  }
  FAIL("the rendezvous did not fail");
  return {};
}

float sum_over(ProcessGroupCollectives& group, float value) {
  int64_t shape = 1;
  DLTensor t{};
  t.data = &value;
  t.device = {kDLCPU, 0};
  t.ndim = 1;
  t.dtype = {kDLFloat, 32, 1};
  t.shape = &shape;
  group.all_reduce(t, FLARE_REDUCE_SUM);
  return value;
}

// Joins `rank` of a pair with time enough to find the store.
std::future<std::unique_ptr<ProcessGroupCollectives>> join_patiently(int port, int rank,
                                                                     int64_t generation = 0) {
  auto options = site_group(port, rank, 2, generation);
  options.rendezvous_timeout = 10s;
  return join(options);
}

// The pair formed: rank 0 adds 1 and rank 1 adds 2, and both see 3.
void check_pair_reduces(std::future<std::unique_ptr<ProcessGroupCollectives>> rank0,
                        std::future<std::unique_ptr<ProcessGroupCollectives>> rank1) {
  auto group0 = rank0.get();
  auto group1 = rank1.get();
  auto sum0 = std::async(std::launch::async, [&] { return sum_over(*group0, 1); });
  CHECK(sum_over(*group1, 2) == 3);
  CHECK(sum0.get() == 3);
}

}  // namespace

TEST_CASE("ranks that never arrive fail the rendezvous in time, named with their node") {
  const int port = flare::common::free_tcp_port();
  auto rank0 = join(site_group(port, 0, 4));
  auto rank1 = join(site_group(port, 1, 4));
  const std::string expected = "worker group of site-1: ranks 2, 3 (node 1) did not join the "
                               "rendezvous at 127.0.0.1:" + std::to_string(port) +
                               " within 0.5 s";
  for (auto* rank : {&rank0, &rank1}) {
    const auto [message, seconds] = failure_of(std::move(*rank));
    CHECK(message == expected);
    CHECK(seconds < 5);
  }
}

TEST_CASE("a rank whose rank 0 never comes says it could not reach the rendezvous") {
  const int port = flare::common::free_tcp_port();
  const auto [message, seconds] = failure_of(join(site_group(port, 2, 4)));
  const std::string expected = "worker group of site-1: could not reach the rendezvous at "
                               "127.0.0.1:" + std::to_string(port) + " (node 0) within 0.5 s";
  CHECK_MESSAGE(message.starts_with(expected), message);
  CHECK(seconds < 5);
}

TEST_CASE("a restarted group passes over the store its previous rank 0 still serves") {
  const int port = flare::common::free_tcp_port();
  auto old_rank0 = join(site_group(port, 0, 2, 0));
  auto old_rank1 = join(site_group(port, 1, 2, 0));
  auto old_group = std::make_pair(old_rank0.get(), old_rank1.get());
  // Rank 1 restarts first (its node noticed first); rank 0 of the old
  // generation still holds the port for a moment.
  old_group.second.reset();
  auto new_rank1 = join_patiently(port, 1, 1);
  std::this_thread::sleep_for(400ms);
  old_group.first.reset();
  check_pair_reduces(join_patiently(port, 0, 1), std::move(new_rank1));
}

TEST_CASE("a rank that comes before rank 0's store is up joins it once it listens") {
  const int port = flare::common::free_tcp_port();
  auto rank1 = join_patiently(port, 1);
  std::this_thread::sleep_for(200ms);
  check_pair_reduces(join_patiently(port, 0), std::move(rank1));
}
