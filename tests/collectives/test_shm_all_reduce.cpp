// flare::collectives::ShmAllReduce: ranks as threads of this process, set up over
// Gloo's in-memory store.
#include "collectives/shm_all_reduce.hpp"

#include "vector_view.hpp"

#include <doctest/doctest.h>
#include <gloo/rendezvous/hash_store.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <future>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using flare::collectives::ShmAllReduce;
using flare::testing::vector_view;
using namespace std::chrono_literals;

std::vector<std::unique_ptr<ShmAllReduce>> connect(int world_size,
                                                   std::chrono::milliseconds timeout = 10s) {
  ::gloo::rendezvous::HashStore store;
  std::vector<std::future<std::unique_ptr<ShmAllReduce>>> joining;
  for (int r = 0; r < world_size; ++r)
    joining.push_back(std::async(std::launch::async, [&, r] {
      std::string why_not;
      auto shm = ShmAllReduce::connect(store, r, world_size, timeout, &why_not);
      if (!shm) throw std::runtime_error("no shared memory: " + why_not);
      return shm;
    }));
  std::vector<std::unique_ptr<ShmAllReduce>> ranks;
  for (auto& j : joining) ranks.push_back(j.get());
  return ranks;
}

// body(rank) on every rank at once; rethrows the first failure.
template <class Body>
void on_every_rank(int world_size, Body body) {
  std::vector<std::future<void>> running;
  for (int r = 0; r < world_size; ++r) running.push_back(std::async(std::launch::async, body, r));
  for (auto& f : running) f.get();
}

}  // namespace

TEST_CASE("three ranks sum a tensor of several pieces, with an odd element count") {
  auto ranks = connect(3);
  // More than one slot, and not a whole number of cache lines.
  const std::size_t n = ranks[0]->slot_bytes() / sizeof(float) * 2 + 37;
  std::vector<std::vector<float>> values(3);
  for (int r = 0; r < 3; ++r) {
    values[r].resize(n);
    for (std::size_t i = 0; i < n; ++i) values[r][i] = static_cast<float>((i % 101) * (r + 1));
  }
  on_every_rank(3, [&](int r) {
    int64_t shape = 0;
    DLTensor t = vector_view(values[r], shape);
    ranks[r]->all_reduce(t, FLARE_REDUCE_SUM);
  });
  for (int r = 0; r < 3; ++r) {
    INFO("rank " << r);
    bool all_right = true;
    for (std::size_t i = 0; i < n; ++i)
      all_right = all_right && values[r][i] == static_cast<float>((i % 101) * 6);
    CHECK(all_right);
  }
}

TEST_CASE("max and min of float64, and sums of int32 and int64 across two ranks") {
  auto ranks = connect(2);
  std::vector<std::vector<double>> maxes{{1.5, -2.0, 7.0}, {3.0, -5.0, 7.5}};
  std::vector<std::vector<double>> mins = maxes;
  std::vector<std::vector<int64_t>> counts{{1, 1LL << 40}, {2, 5}};
  std::vector<std::vector<int32_t>> small{{3, -4}, {10, 20}};
  on_every_rank(2, [&](int r) {
    int64_t s1 = 0, s2 = 0, s3 = 0, s4 = 0;
    DLTensor a = vector_view(maxes[r], s1), b = vector_view(mins[r], s2);
    DLTensor c = vector_view(counts[r], s3), d = vector_view(small[r], s4);
    ranks[r]->all_reduce(a, FLARE_REDUCE_MAX);
    ranks[r]->all_reduce(b, FLARE_REDUCE_MIN);
    ranks[r]->all_reduce(c, FLARE_REDUCE_SUM);
    ranks[r]->all_reduce(d, FLARE_REDUCE_SUM);
  });
  for (int r = 0; r < 2; ++r) {
    CHECK(maxes[r] == std::vector<double>{3.0, -2.0, 7.5});
    CHECK(mins[r] == std::vector<double>{1.5, -5.0, 7.0});
    CHECK(counts[r] == std::vector<int64_t>{3, (1LL << 40) + 5});
    CHECK(small[r] == std::vector<int32_t>{13, 16});
  }
}

TEST_CASE("ranks arriving at different times get the right sums call after call, bit-identical") {
  auto ranks = connect(3);
  constexpr int kCalls = 200;
  std::vector<std::vector<std::vector<float>>> results(3, std::vector<std::vector<float>>(kCalls));
  on_every_rank(3, [&](int r) {
    std::mt19937 delay(static_cast<unsigned>(r));
    for (int call = 0; call < kCalls; ++call) {
      // Sizes change call by call; every rank draws the same values per call.
      std::mt19937 gen(static_cast<unsigned>(call));
      std::vector<float> v(1 + gen() % 5000);
      std::normal_distribution<float> normal;
      for (auto& x : v) x = normal(gen) * static_cast<float>(r + 1);
      if (delay() % 4 == 0) std::this_thread::sleep_for(std::chrono::microseconds(delay() % 300));
      int64_t shape = 0;
      DLTensor t = vector_view(v, shape);
      ranks[r]->all_reduce(t, FLARE_REDUCE_SUM);
      results[r][call] = std::move(v);
    }
  });
  for (int call = 0; call < kCalls; ++call) {
    std::mt19937 gen(static_cast<unsigned>(call));
    std::vector<float> expected(1 + gen() % 5000);
    std::normal_distribution<float> normal;
    for (auto& x : expected) {
      const float base = normal(gen);
      x = base + base * 2 + base * 3;  // rank order, as the chunk owner adds
    }
    INFO("call " << call);
    REQUIRE(results[0][call] == expected);
    CHECK(std::memcmp(results[1][call].data(), results[0][call].data(),
                      expected.size() * sizeof(float)) == 0);
    CHECK(std::memcmp(results[2][call].data(), results[0][call].data(),
                      expected.size() * sizeof(float)) == 0);
  }
}

TEST_CASE("a rank whose peer never arrives fails after the timeout, naming the peer") {
  auto ranks = connect(2, 500ms);
  std::vector<float> v(16, 1.0f);
  int64_t shape = 0;
  DLTensor t = vector_view(v, shape);
  const auto start = std::chrono::steady_clock::now();
  try {
    ranks[0]->all_reduce(t, FLARE_REDUCE_SUM);
    FAIL("expected a timeout");
  } catch (const std::runtime_error& e) {
    const std::string message = e.what();
    INFO(message);
    CHECK(message.find("rank 1 did not reach shared-memory all-reduce #1 within 500 ms") !=
          std::string::npos);
  }
  CHECK(std::chrono::steady_clock::now() - start < 5s);
}

TEST_CASE("takes dense CPU tensors of the four reducible types, nothing else") {
  std::vector<float> f(4);
  std::vector<int64_t> i(4);
  int64_t shape = 0;
  CHECK(ShmAllReduce::supports(vector_view(f, shape)));
  CHECK(ShmAllReduce::supports(vector_view(i, shape)));
  DLTensor half = vector_view(f, shape);
  half.dtype = {kDLFloat, 16, 1};
  CHECK_FALSE(ShmAllReduce::supports(half));
  DLTensor gpu = vector_view(f, shape);
  gpu.device = {kDLCUDA, 0};
  CHECK_FALSE(ShmAllReduce::supports(gpu));
  int64_t shape2[2] = {2, 2};
  int64_t strides[2] = {1, 2};  // column-major
  DLTensor transposed = vector_view(f, shape);
  transposed.ndim = 2;
  transposed.shape = shape2;
  transposed.strides = strides;
  CHECK_FALSE(ShmAllReduce::supports(transposed));
}
