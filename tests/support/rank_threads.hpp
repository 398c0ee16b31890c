// Runs the ranks of a worker group as threads of the test process, each with
// its own c10d group on 127.0.0.1.
#pragma once

#include "common/local_host.hpp"
#include "collectives/process_group_collectives.hpp"

#include <chrono>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <vector>

namespace flare::testing {

inline flare::collectives::ProcessGroupOptions loopback_group(int port, int rank, int world_size) {
  flare::collectives::ProcessGroupOptions options;
  options.master_addr = "127.0.0.1";
  options.master_port = port;
  options.rank = rank;
  options.world_size = world_size;
  options.timeout = std::chrono::seconds(30);
  options.rendezvous_timeout = std::chrono::seconds(20);
  return options;
}

// Forms a group of `world_size` ranks (the rendezvous needs them all at once,
// so each joins from its own thread); element r is rank r.
// shared_memory false: CPU all-reduces on Gloo, as across hosts.
// Tests run in parallel, and the port free_tcp_port found may be taken by
// another process before rank 0's store binds it: a group that did not form
// is formed again on a new port, three tries in all.
inline std::vector<std::unique_ptr<flare::collectives::ProcessGroupCollectives>> form_group(
    int world_size, bool shared_memory = true, const std::string& backend = "gloo") {
  for (int attempt = 1;; ++attempt) {
    const int port = flare::common::free_tcp_port();
    std::vector<std::future<std::unique_ptr<flare::collectives::ProcessGroupCollectives>>>
        joining;
    for (int r = 0; r < world_size; ++r)
      joining.push_back(std::async(std::launch::async, [=] {
        auto options = loopback_group(port, r, world_size);
        options.shared_memory = shared_memory;
        options.backend = backend;
        return std::make_unique<flare::collectives::ProcessGroupCollectives>(options);
      }));
    std::vector<std::unique_ptr<flare::collectives::ProcessGroupCollectives>> group;
    std::exception_ptr failed;
    for (auto& j : joining) {
      try {
        group.push_back(j.get());
      } catch (...) {
        if (!failed) failed = std::current_exception();
      }
    }
    if (!failed) return group;
    if (attempt == 3) std::rethrow_exception(failed);
  }
}

// Runs body(rank) on every rank at once, one thread each; returns the results
// in rank order and rethrows the first failure.
template <class Body>
auto on_every_rank(int world_size, Body body) {
  using Result = decltype(body(0));
  std::vector<std::future<Result>> running;
  for (int r = 0; r < world_size; ++r) running.push_back(std::async(std::launch::async, body, r));
  if constexpr (std::is_void_v<Result>) {
    for (auto& f : running) f.get();
  } else {
    std::vector<Result> results;
    for (auto& f : running) results.push_back(f.get());
    return results;
  }
}

}  // namespace flare::testing
