// Splits a flat range [0, n) into contiguous chunks and runs them on all
// cores. The chunking depends only on n and the chunk size, never on the
// number of threads, so per-chunk partial results (norms) are reproducible.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <span>
#include <utility>
#include <system_error>
#include <thread>
#include <vector>

namespace flare::agg {

// Elements per chunk: large enough (1 MiB of float32) that starting a thread
// costs well under 1% of its work; a range below two chunks runs inline.
inline constexpr size_t kChunkElements = size_t{1} << 18;

// The CPUs this process may run on (its affinity mask, not the machine's).
size_t usable_cpus();

// Calls work(segment, first, last) for every chunk of every segment
// (segment s has sizes[s] elements, chunked on its own; last exclusive), all
// in one parallel region: a model's tensors cost one start and one join of
// the threads, not one per tensor. Up to max_threads threads (0:
// usable_cpus()), the calling thread among them, each taking the next chunk
// left. Chunk c of a segment covers [c * chunk, min(size, (c + 1) * chunk)).
template <class Work>
void for_each_chunk_of(std::span<const size_t> sizes, Work&& work, size_t max_threads = 0,
                       size_t chunk = kChunkElements) {
  std::vector<std::pair<size_t, size_t>> chunks;  // (segment, first)
  size_t total = 0;
  for (size_t s = 0; s < sizes.size(); ++s) {
    for (size_t first = 0; first < sizes[s]; first += chunk) chunks.emplace_back(s, first);
    total += sizes[s];
  }
  if (chunks.empty()) return;
  const size_t wanted = max_threads ? max_threads : usable_cpus();
  const size_t threads = std::min(wanted, total < 2 * chunk ? size_t{1} : chunks.size());
  // Each thread takes the next chunk not yet taken: on a shared machine a
  // thread that starts late or is descheduled does less, the others more.
  std::atomic<size_t> next{0};
  auto run = [&] {
    for (size_t c; (c = next.fetch_add(1, std::memory_order_relaxed)) < chunks.size();) {
      const auto [s, first] = chunks[c];
      work(s, first, std::min(sizes[s], first + chunk));
    }
  };
  std::vector<std::jthread> helpers;
  helpers.reserve(threads - 1);
  try {
    while (helpers.size() + 1 < threads) helpers.emplace_back(run);
  } catch (const std::system_error&) {
    // Fewer threads than asked: the chunks left go to those there are.
  }
  run();
}

// The same over one flat range [0, n): work(first, last).
template <class Work>
void for_each_chunk(size_t n, Work&& work, size_t max_threads = 0, size_t chunk = kChunkElements) {
  for_each_chunk_of(
      std::span<const size_t>(&n, 1), [&](size_t, size_t a, size_t b) { work(a, b); }, max_threads,
      chunk);
}

}  // namespace flare::agg
