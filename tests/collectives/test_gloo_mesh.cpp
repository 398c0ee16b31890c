// flare::collectives::GlooMesh on its own: Gloo's in-memory store and tcp pairs on
// 127.0.0.1, two ranks as threads of this process.
#include "collectives/gloo_mesh.hpp"

#include "vector_view.hpp"

#include <doctest/doctest.h>
#include <gloo/rendezvous/hash_store.h>
#include <gloo/transport/tcp/device.h>

#include <chrono>
#include <cstdint>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using flare::collectives::GlooMesh;
using flare::testing::vector_view;
using namespace std::chrono_literals;

// Two connected meshes (rank 0, rank 1) with the given timeout and sync_bytes.
std::vector<std::unique_ptr<GlooMesh>> connect_two(std::chrono::milliseconds timeout,
                                                   std::size_t sync_bytes) {
  ::gloo::rendezvous::HashStore store;
  ::gloo::transport::tcp::attr attr("127.0.0.1");
  auto device = ::gloo::transport::tcp::CreateDevice(attr);
  std::vector<std::future<std::unique_ptr<GlooMesh>>> joining;
  for (int r = 0; r < 2; ++r)
    joining.push_back(std::async(std::launch::async, [&, r] {
      return std::make_unique<GlooMesh>(store, device, r, 2, timeout, sync_bytes);
    }));
  std::vector<std::unique_ptr<GlooMesh>> meshes;
  for (auto& j : joining) meshes.push_back(j.get());
  return meshes;
}

}  // namespace

TEST_CASE("the mesh sums a tensor larger than one piece across two ranks") {
  auto meshes = connect_two(10s, GlooMesh::kLoopbackSyncBytes);
  // 600 KB: three pieces of 256 KiB.
  std::vector<std::vector<float>> values{std::vector<float>(150'000, 1.0f),
                                         std::vector<float>(150'000, 2.0f)};
  values[1].back() = 5.0f;
  std::vector<std::future<void>> running;
  for (int r = 0; r < 2; ++r)
    running.push_back(std::async(std::launch::async, [&, r] {
      int64_t shape = 0;
      DLTensor t = vector_view(values[r], shape);
      meshes[r]->all_reduce(t, FLARE_REDUCE_SUM);
    }));
  for (auto& f : running) f.get();
  for (const auto& v : values) {
    CHECK(v.front() == 3.0f);
    CHECK(v[149'998] == 3.0f);
    CHECK(v.back() == 6.0f);
  }
}

TEST_CASE("a peer that is connected but never reads fails the sender's write after the timeout") {
  // A piece far beyond what the sockets buffer, so the write itself blocks:
  // without a send timeout it would never return.
  auto meshes = connect_two(1s, 256u << 20);
  std::vector<float> values(32u << 20, 1.0f);  // 128 MiB: halves of 64 MiB each way
  int64_t shape = 0;
  DLTensor t = vector_view(values, shape);
  const auto start = std::chrono::steady_clock::now();
  try {
    meshes[0]->all_reduce(t, FLARE_REDUCE_SUM);
    FAIL("expected the write to time out");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()).find("Write timeout") != std::string::npos);
  }
  CHECK(std::chrono::steady_clock::now() - start < 10s);
}
