#include "helper_threads.hpp"

#include <algorithm>
#include <chrono>
#include <system_error>

namespace flare::agg {

HelperThreads::HelperThreads(size_t helpers) {
  try {
    for (size_t i = 0; i < helpers; ++i) threads_.emplace_back([this] { helper_loop(); });
  } catch (const std::system_error&) {
    // Fewer helpers than asked: the caller and those there are do the work.
  }
}

HelperThreads::~HelperThreads() {
  stop_.store(true);
  generation_.fetch_add(1);
  generation_.notify_all();
  threads_.clear();  // joins
}

void HelperThreads::run(const Job& job) {
  if (job.n == 0) return;
  if (threads_.empty() || job.n <= job.chunk || alone_left_ > 0) {
    if (alone_left_ > 0) --alone_left_;
    for (size_t first = 0; first < job.n; first += job.chunk)
      job.call(job.work, first, std::min(job.n, first + job.chunk));
    return;
  }
  next_.store(0);
  job_.store(&job);  // after next_: a helper that sees the job takes its chunks
  generation_.fetch_add(1);
  generation_.notify_all();
  take_chunks();
  // Every chunk is taken: withdraw the job, then wait for the helpers still
  // on one. A helper that looks later finds no job and takes nothing.
  job_.store(nullptr);
  const auto waiting_since = std::chrono::steady_clock::now();
  for (size_t w; (w = working_.load()) != 0;) working_.wait(w);
  // A share takes microseconds; a longer wait means a helper lost its core
  // (another process busy on it): the caller alone is faster for a while.
  // Each late helper in a row doubles the spell alone; a helper on time halves it.
  if (std::chrono::steady_clock::now() - waiting_since > kLateHelper) {
    alone_left_ = jobs_alone_;
    jobs_alone_ = std::min(2 * jobs_alone_, kMostJobsAlone);
  } else {
    jobs_alone_ = std::max(jobs_alone_ / 2, kJobsAlone);
  }
}

void HelperThreads::take_chunks() {
  for (;;) {
    // Counted as working before looking at the job: the caller withdraws
    // the job before it waits for working_ to reach 0, so a job seen here
    // outlives our use of it.
    working_.fetch_add(1);
    const Job* job = job_.load();
    const size_t c = job ? next_.fetch_add(1) : 0;
    const bool taken = job && c < (job->n + job->chunk - 1) / job->chunk;
    if (taken) {
      const size_t first = c * job->chunk;
      job->call(job->work, first, std::min(job->n, first + job->chunk));
    }
    if (working_.fetch_sub(1) == 1) working_.notify_all();
    if (!taken) return;
  }
}

void HelperThreads::helper_loop() {
  uint64_t seen = 0;
  for (;;) {
    generation_.wait(seen);
    seen = generation_.load();
    if (stop_.load()) return;
    take_chunks();
  }
}

}  // namespace flare::agg
