// flare::agg::HelperThreads: every chunk of every job runs exactly once,
// whatever the number of helpers and however jobs follow one another.
#include "helper_threads.hpp"

#include <atomic>
#include <chrono>
#include <cstddef>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

using flare::agg::HelperThreads;

TEST_CASE("helper threads run every chunk of every job exactly once, then the call returns") {
  for (size_t helpers : {0, 1, 3}) {
    CAPTURE(helpers);
    HelperThreads pool(helpers);
    // Jobs one right after another, of 0, 1, a part of one, and many chunks:
    // a helper slow to wake must not run a chunk of a job already over.
    for (size_t n : {0, 1, 5, 64, 65, 1000, 4097, 0, 33, 10000}) {
      CAPTURE(n);
      for (int repeat = 0; repeat < 20; ++repeat) {
        std::vector<std::atomic<int>> runs(n);
        std::atomic<bool> bad_range{false};
        pool.for_each_chunk(n, 64, [&](size_t first, size_t last) {
          if (first % 64 != 0 || last > n || last <= first || (last != n && last - first != 64))
            bad_range = true;
          // A slow chunk, likely a helper's: the call must wait for it.
          if (first == 64) std::this_thread::sleep_for(std::chrono::microseconds(200));
          for (size_t i = first; i < last; ++i) runs[i].fetch_add(1);
        });
        // Checked after the call: it returned only once every chunk was done.
        size_t wrong = 0;
        for (auto& r : runs) wrong += r.load() != 1;
        CHECK(wrong == 0);
        CHECK_FALSE(bad_range.load());
      }
    }
  }
}

TEST_CASE("helper threads share the chunks: a slow chunk on one thread does not hold the rest") {
  HelperThreads pool(1);
  std::atomic<size_t> on_caller{0}, on_helper{0};
  const auto caller = std::this_thread::get_id();
  for (int repeat = 0; repeat < 50 && on_helper == 0; ++repeat)
    pool.for_each_chunk(64, 1, [&](size_t, size_t) {
      (std::this_thread::get_id() == caller ? on_caller : on_helper).fetch_add(1);
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    });
  CHECK(on_caller > 0);
  CHECK(on_helper > 0);  // the helper took part at least once
}

TEST_CASE("after a helper held the caller up, the next jobs run on the caller alone") {
  HelperThreads pool(1);
  const auto caller = std::this_thread::get_id();
  // A helper's share that outlasts the caller's wait limit by far, as when
  // the helper loses its core to another process.
  std::atomic<bool> helper_was_late{false};
  for (int repeat = 0; repeat < 50 && !helper_was_late; ++repeat)
    pool.for_each_chunk(64, 1, [&](size_t, size_t) {
      if (std::this_thread::get_id() != caller && !helper_was_late) {
        helper_was_late = true;
        // Far longer than the caller's 64 chunks of 20 us (about 5 ms slept).
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      std::this_thread::sleep_for(std::chrono::microseconds(20));
    });
  REQUIRE(helper_was_late);
  std::atomic<size_t> on_helper{0};
  std::vector<int> runs(64);
  for (int job = 0; job < 20; ++job)
    pool.for_each_chunk(64, 1, [&](size_t first, size_t) {
      if (std::this_thread::get_id() != caller) on_helper.fetch_add(1);
      ++runs[first];
      std::this_thread::sleep_for(std::chrono::microseconds(20));
    });
  CHECK(on_helper == 0);
  for (int r : runs) CHECK(r == 20);  // alone, still every chunk once per job
}
