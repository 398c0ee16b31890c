// Threads kept for the life of an aggregator, for work too short to start
// threads per call: a streamed 4 MiB piece folds in about 0.1 ms, about what
// starting and joining two threads costs. The caller works too, and waits
// only for chunks a helper has taken, never for a helper that is slow to
// wake (on a busy machine it may be descheduled): it then does the rest,
// and after a helper descheduled in the middle of a share held it up, it
// works alone for a while.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <thread>
#include <type_traits>
#include <vector>

namespace flare::agg {

class HelperThreads {
 public:
  // `helpers` threads besides the caller (0: the caller does all the work).
  explicit HelperThreads(size_t helpers);
  ~HelperThreads();
  HelperThreads(const HelperThreads&) = delete;
  HelperThreads& operator=(const HelperThreads&) = delete;

  // Calls work(first, last) for the chunks [c * chunk, min(n, (c + 1) * chunk))
  // of [0, n), on the calling thread and the helpers; returns when all are
  // done. One caller at a time (an aggregator is called from one thread at a
  // time).
  template <class Work>
  void for_each_chunk(size_t n, size_t chunk, Work&& work) {
    const Job job{n, chunk, &work, [](void* w, size_t a, size_t b) {
                    (*static_cast<std::remove_reference_t<Work>*>(w))(a, b);
                  }};
    run(job);
  }

 private:
  struct Job {
    size_t n, chunk;
    void* work;
    void (*call)(void*, size_t, size_t);
  };
  void run(const Job& job);
  void take_chunks();  // until none is left
  void helper_loop();

  std::atomic<const Job*> job_{nullptr};
  std::atomic<size_t> next_{0};         // next chunk to take
  std::atomic<size_t> working_{0};      // threads between looking and finishing
  std::atomic<uint64_t> generation_{0};  // bumped to wake the helpers
  std::atomic<bool> stop_{false};
  std::vector<std::jthread> threads_;
  // After waiting longer than kLateHelper for a helper's share, the next
  // kJobsAlone jobs run on the caller alone (bench/RESULTS.md: with another
  // process busy on a core, helpers only added stalls).
  static constexpr std::chrono::microseconds kLateHelper{100};
  static constexpr size_t kJobsAlone = 256;
  static constexpr size_t kMostJobsAlone = size_t{1} << 16;
  size_t jobs_alone_ = kJobsAlone;  // the next spell alone
  size_t alone_left_ = 0;
};

}  // namespace flare::agg
