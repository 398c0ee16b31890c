// Splits a flat range [0, n) into contiguous chunks and runs them on all
// cores. The chunking depends only on n and the chunk size, never on the
// number of threads, so per-chunk partial results (norms) are reproducible.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <system_error>
#include <thread>
#include <vector>

namespace flare::agg {

// Elements per chunk: large enough (1 MiB of float32) that starting a thread
// costs well under 1% of its work; a range below two chunks runs inline.
inline constexpr size_t kChunkElements = size_t{1} << 18;

// The CPUs this process may run on (its affinity mask, not the machine's).
size_t usable_cpus();

// Calls work(first, last) for every chunk of [0, n) (last exclusive), on up to
// max_threads threads (0: usable_cpus()), the calling thread among them,
// each taking the next chunk left.
// Chunk c covers [c * chunk, min(n, (c + 1) * chunk)).
template <class Work>
void for_each_chunk(size_t n, Work&& work, size_t max_threads = 0, size_t chunk = kChunkElements) {
  const size_t chunks = (n + chunk - 1) / chunk;
  if (chunks == 0) return;
  const size_t wanted = max_threads ? max_threads : usable_cpus();
  const size_t threads = std::min(wanted, n < 2 * chunk ? size_t{1} : chunks);
  // Each thread takes the next chunk not yet taken: on a shared machine a
  // thread that starts late or is descheduled does less, the others more.
  std::atomic<size_t> next{0};
  auto run = [&](size_t) {
    for (size_t c; (c = next.fetch_add(1, std::memory_order_relaxed)) < chunks;)
      work(c * chunk, std::min(n, (c + 1) * chunk));
  };
  std::vector<std::jthread> helpers;
  helpers.reserve(threads - 1);
  size_t started = 1;
  try {
    for (; started < threads; ++started) helpers.emplace_back(run, started);
  } catch (const std::system_error&) {
    // No thread to be had: this one does the rest, the work is the same.
  }
  for (size_t t = started; t < threads; ++t) run(t);
  run(0);
}

}  // namespace flare::agg
