// flare::collectives::ProcessGroupCollectives: c10d TCPStore + Gloo on loopback,
// two or three ranks as threads of this process.
#include "collectives/process_group_collectives.hpp"

#include "rank_threads.hpp"
#include "vector_view.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <future>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

namespace {

using flare::testing::form_group;
using flare::testing::on_every_rank;
using flare::testing::vector_view;


}  // namespace

TEST_CASE("all_reduce sums float32 tensors across two ranks in place") {
  auto group = form_group(2);
  const auto results = on_every_rank(2, [&](int r) {
    std::vector<float> values{1.0f + r, 10.0f * (r + 1), -1.0f * r};
    int64_t shape = 0;
    DLTensor t = vector_view(values, shape);
    group[r]->all_reduce(t, FLARE_REDUCE_SUM);
    return values;
  });
  for (const auto& values : results) CHECK(values == std::vector<float>{3.0f, 30.0f, -1.0f});
}

TEST_CASE("all_reduce takes the maximum and the minimum of float64 tensors") {
  auto group = form_group(2);
  const auto results = on_every_rank(2, [&](int r) {
    std::vector<double> high{r == 0 ? 5.0 : -2.0, r == 0 ? 0.5 : 7.25};
    std::vector<double> low = high;
    int64_t s1 = 0, s2 = 0;
    DLTensor h = vector_view(high, s1);
    DLTensor l = vector_view(low, s2);
    group[r]->all_reduce(h, FLARE_REDUCE_MAX);
    group[r]->all_reduce(l, FLARE_REDUCE_MIN);
    return std::make_pair(high, low);
  });
  for (const auto& [high, low] : results) {
    CHECK(high == std::vector<double>{5.0, 7.25});
    CHECK(low == std::vector<double>{-2.0, 0.5});
  }
}

TEST_CASE("CPU all-reduces go through shared memory on one host, else through Gloo") {
  CHECK(form_group(2)[0]->cpu_all_reduce_path() == "shared memory");
  CHECK(form_group(2, false)[1]->cpu_all_reduce_path() == "gloo mesh");
}

TEST_CASE("all_reduce sums tensors of every size across three ranks") {
  // Three ranks: not a power of two, the halving-doubling path's odd case.
  // Sizes up to past the Gloo mesh's 1 MiB, where ProcessGroupGloo takes over.
  bool shared_memory = true;
  SUBCASE("shared memory") {}
  SUBCASE("Gloo") { shared_memory = false; }
  auto group = form_group(3, shared_memory);
  const auto results = on_every_rank(3, [&](int r) {
    std::vector<std::vector<float>> floats;
    for (int n : {1, 7, 100003, 300001}) {
      std::vector<float> values(n);
      for (int i = 0; i < n; ++i) values[i] = static_cast<float>((i % 97) * (r + 1));
      int64_t shape = 0;
      DLTensor t = vector_view(values, shape);
      group[r]->all_reduce(t, FLARE_REDUCE_SUM);
      floats.push_back(std::move(values));
    }
    std::vector<int64_t> counts{int64_t{1} << 40, r};
    int64_t shape = 0;
    DLTensor t = vector_view(counts, shape);
    group[r]->all_reduce(t, FLARE_REDUCE_SUM);
    return std::make_pair(floats, counts);
  });
  for (const auto& [floats, counts] : results) {
    for (const auto& values : floats)
      for (size_t i = 0; i < values.size(); ++i) {
        INFO("element " << i << " of " << values.size());
        REQUIRE(values[i] == static_cast<float>((i % 97) * 6));
      }
    CHECK(counts == std::vector<int64_t>{3 * (int64_t{1} << 40), 3});
  }
}

TEST_CASE("started all-reduces of CPU-direct and process-group tensors complete in order") {
  // uint8 is not a dtype the shared-memory or direct Gloo paths take: it goes
  // through ProcessGroupGloo's thread, the float32 tensors around it do not.
  bool shared_memory = true;
  SUBCASE("shared memory") {}
  SUBCASE("Gloo") { shared_memory = false; }
  auto group = form_group(2, shared_memory);
  const auto results = on_every_rank(2, [&](int r) {
    std::vector<float> first(1000, 1.0f + r), last(3, 2.0f * r);
    std::vector<uint8_t> bytes{static_cast<uint8_t>(r + 1), 7};
    int64_t s1 = 0, s2 = 0, s3 = 0;
    DLTensor a = vector_view(first, s1);
    DLTensor b = vector_view(bytes, s2);
    DLTensor c = vector_view(last, s3);
    auto wa = group[r]->all_reduce_start(a, FLARE_REDUCE_SUM);
    auto wb = group[r]->all_reduce_start(b, FLARE_REDUCE_SUM);
    auto wc = group[r]->all_reduce_start(c, FLARE_REDUCE_MAX);
    wc->wait();
    wb->wait();
    wa->wait();
    return std::make_tuple(first, bytes, last);
  });
  for (const auto& [first, bytes, last] : results) {
    CHECK(first == std::vector<float>(1000, 3.0f));
    CHECK(bytes == std::vector<uint8_t>{3, 14});
    CHECK(last == std::vector<float>(3, 2.0f));
  }
}

TEST_CASE("an all_reduce whose peer never takes part fails after the timeout naming the rank") {
  const int port = flare::common::free_tcp_port();
  std::vector<std::future<std::unique_ptr<flare::collectives::ProcessGroupCollectives>>> joining;
  for (int r = 0; r < 2; ++r)
    joining.push_back(std::async(std::launch::async, [=] {
      auto options = flare::testing::loopback_group(port, r, 2);
      options.timeout = std::chrono::seconds(2);
      return std::make_unique<flare::collectives::ProcessGroupCollectives>(options);
    }));
  auto rank0 = joining[0].get();
  auto rank1 = joining[1].get();  // joined, then never calls all_reduce
  std::vector<float> values(16, 1.0f);
  int64_t shape = 0;
  DLTensor t = vector_view(values, shape);
  const auto start = std::chrono::steady_clock::now();
  try {
    rank0->all_reduce(t, FLARE_REDUCE_SUM);
    FAIL("expected the all_reduce to time out");
  } catch (const std::runtime_error& e) {
    const std::string message = e.what();
    INFO("message: " << message);
    CHECK(message.find("all_reduce failed on rank 0 of 2") != std::string::npos);
  }
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(10));
}

TEST_CASE("broadcast copies the root rank's tensor to every rank") {
  auto group = form_group(2);
  const auto results = on_every_rank(2, [&](int r) {
    std::vector<float> values(5, static_cast<float>(r));
    if (r == 1) values = {1.5f, 2.5f, 3.5f, 4.5f, 5.5f};
    int64_t shape = 0;
    DLTensor t = vector_view(values, shape);
    group[r]->broadcast(t, /*root_rank=*/1);
    return values;
  });
  for (const auto& values : results)
    CHECK(values == std::vector<float>{1.5f, 2.5f, 3.5f, 4.5f, 5.5f});
}

TEST_CASE("barrier returns only once every rank has reached it") {
  auto group = form_group(2);
  const auto waited = on_every_rank(2, [&](int r) {
    if (r == 1) std::this_thread::sleep_for(std::chrono::milliseconds(300));
    const auto start = std::chrono::steady_clock::now();
    group[r]->barrier();
    return std::chrono::steady_clock::now() - start;
  });
  CHECK(waited[0] >= std::chrono::milliseconds(200));
}

TEST_CASE("a group reports its rank and size") {
  auto group = form_group(2);
  CHECK(group[0]->rank() == 0);
  CHECK(group[1]->rank() == 1);
  CHECK(group[1]->world_size() == 2);
}

TEST_CASE("a rank whose peer never joins fails the rendezvous with a message naming it") {
  auto options = flare::testing::loopback_group(flare::common::free_tcp_port(), 0, 2);
  options.rendezvous_timeout = std::chrono::milliseconds(500);
  try {
    flare::collectives::ProcessGroupCollectives lonely(options);
    FAIL("expected the rendezvous to time out");
  } catch (const std::runtime_error& e) {
    const std::string message = e.what();
    INFO("message: " << message);
    CHECK(message.find("rank 1 did not join the rendezvous") != std::string::npos);
  }
}

TEST_CASE("an invalid rank is rejected before any rendezvous") {
  auto options = flare::testing::loopback_group(flare::common::free_tcp_port(), 2, 2);
  CHECK_THROWS_AS(flare::collectives::ProcessGroupCollectives{options}, std::runtime_error);
}
