#include "collectives/shm_all_reduce.hpp"

#include "collectives/cpu_tensor.hpp"

#include <gloo/rendezvous/store.h>

#include <fcntl.h>
#include <immintrin.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <random>
#include <stdexcept>
#include <vector>

namespace flare::collectives {

namespace {

constexpr std::size_t kCacheLine = 64;
// The whole segment stays near this size whatever the ranks: Docker's default
// /dev/shm is 64 MiB.
constexpr std::size_t kSegmentBudget = 32u << 20;
constexpr std::size_t kMinSlotBytes = 256u << 10;
constexpr std::size_t kMaxSlotBytes = 4u << 20;
// Spins before a waiting rank starts yielding its core (a few microseconds).
constexpr int kSpinsBeforeYield = 4096;
// What rank 0 publishes instead of a segment name when it has none.
constexpr const char* kNoSegment = "none";

struct alignas(kCacheLine) Counter {
  std::atomic<std::uint64_t> value;
};
static_assert(std::atomic<std::uint64_t>::is_always_lock_free,
              "counters shared between processes must be lock-free");

std::vector<char> bytes_of(const std::string& s) { return {s.begin(), s.end()}; }
std::string string_of(const std::vector<char>& v) { return {v.begin(), v.end()}; }

template <class T>
void combine(T* out, const T* in, std::size_t n, flare_reduce_op op) {
  switch (op) {
    case FLARE_REDUCE_SUM:
      for (std::size_t i = 0; i < n; ++i) out[i] += in[i];
      return;
    case FLARE_REDUCE_MAX:
      for (std::size_t i = 0; i < n; ++i) out[i] = std::max(out[i], in[i]);
      return;
    case FLARE_REDUCE_MIN:
      for (std::size_t i = 0; i < n; ++i) out[i] = std::min(out[i], in[i]);
      return;
  }
  throw std::runtime_error("unknown reduce op " + std::to_string(static_cast<int>(op)));
}

void combine(void* out, const void* in, std::size_t bytes, const DLDataType& dtype,
             flare_reduce_op op) {
  if (dtype.code == kDLFloat && dtype.bits == 32)
    return combine(static_cast<float*>(out), static_cast<const float*>(in), bytes / 4, op);
  if (dtype.code == kDLFloat && dtype.bits == 64)
    return combine(static_cast<double*>(out), static_cast<const double*>(in), bytes / 8, op);
  if (dtype.code == kDLInt && dtype.bits == 32)
    return combine(static_cast<int32_t*>(out), static_cast<const int32_t*>(in), bytes / 4, op);
  return combine(static_cast<int64_t*>(out), static_cast<const int64_t*>(in), bytes / 8, op);
}

std::size_t slot_bytes_for(int world_size) {
  std::size_t slot = kSegmentBudget / static_cast<std::size_t>(world_size + 2);
  slot = std::clamp(slot, kMinSlotBytes, kMaxSlotBytes);
  return slot / 4096 * 4096;
}

std::string random_name() {
  std::random_device device;
  return "/flare-allreduce-" + std::to_string(::getpid()) + "-" + std::to_string(device());
}

// The segment mapped, or an error saying why not. fd is closed either way.
void* map_segment(int fd, std::size_t bytes, bool create, std::string* why_not) {
  void* base = MAP_FAILED;
  if (fd < 0) {
    *why_not = std::string("shm_open: ") + std::strerror(errno);
  } else if (int err = create ? ::posix_fallocate(fd, 0, static_cast<off_t>(bytes)) : 0) {
    // posix_fallocate, not ftruncate: a /dev/shm too small for the segment
    // must fail here, not as SIGBUS on first touch.
    *why_not = "reserving " + std::to_string(bytes >> 20) + " MiB in /dev/shm: " +
               std::strerror(err);
  } else {
    base = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) *why_not = std::string("mmap: ") + std::strerror(errno);
  }
  if (fd >= 0) ::close(fd);
  return base == MAP_FAILED ? nullptr : base;
}

}  // namespace

struct ShmAllReduce::Header {
  Counter arrived[kMaxRanks];  // call number whose input a rank has put in its slot
  Counter reduced[kMaxRanks];  // call number whose chunk a rank has reduced
  pid_t pid[kMaxRanks];        // to tell a slow peer from a dead one
};

// The slots start on the page after the header.
std::size_t ShmAllReduce::header_bytes() { return (sizeof(Header) + 4095) / 4096 * 4096; }

std::unique_ptr<ShmAllReduce> ShmAllReduce::connect(::gloo::rendezvous::Store& store, int rank,
                                                    int world_size,
                                                    std::chrono::milliseconds timeout,
                                                    std::string* why_not) {
  const std::size_t slot = slot_bytes_for(world_size);
  const std::size_t bytes = header_bytes() + slot * static_cast<std::size_t>(world_size + 2);
  std::string reason;
  void* base = nullptr;
  if (world_size > kMaxRanks) {
    reason = std::to_string(world_size) + " ranks (at most " + std::to_string(kMaxRanks) + ")";
    if (rank == 0) store.set("name", bytes_of(kNoSegment));
  } else if (rank == 0) {
    const std::string name = random_name();
    base = map_segment(::shm_open(name.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600), bytes, true,
                       &reason);
    store.set("name", bytes_of(base ? name : kNoSegment));
    if (base) {
      // Unlinked once every rank has it open: nothing is left in /dev/shm,
      // whatever happens to the group later.
      std::vector<std::string> keys;
      for (int r = 1; r < world_size; ++r) keys.push_back("opened/" + std::to_string(r));
      try {
        store.wait(keys, timeout);
      } catch (...) {
        ::shm_unlink(name.c_str());
        ::munmap(base, bytes);
        throw;
      }
      ::shm_unlink(name.c_str());
    }
  } else {
    store.wait({"name"}, timeout);
    const std::string name = string_of(store.get("name"));
    if (name == kNoSegment)
      reason = "rank 0 could not create the segment";
    else
      base = map_segment(::shm_open(name.c_str(), O_RDWR, 0600), bytes, false, &reason);
    store.set("opened/" + std::to_string(rank), bytes_of("1"));
  }
  // All or none: every rank says whether it has the segment.
  store.set("usable/" + std::to_string(rank), bytes_of(base ? "1" : "0"));
  bool everyone = true;
  for (int r = 0; r < world_size; ++r) {
    const std::string key = "usable/" + std::to_string(r);
    store.wait({key}, timeout);
    everyone = everyone && string_of(store.get(key)) == "1";
  }
  if (!everyone) {
    if (base) ::munmap(base, bytes);
    if (why_not) *why_not = reason.empty() ? "another rank could not map the segment" : reason;
    return nullptr;
  }
  return std::unique_ptr<ShmAllReduce>(
      new ShmAllReduce(rank, world_size, timeout, base, bytes, slot));
}

ShmAllReduce::ShmAllReduce(int rank, int world_size, std::chrono::milliseconds timeout,
                           void* base, std::size_t bytes, std::size_t slot_bytes)
    : rank_(rank),
      world_size_(world_size),
      timeout_(timeout),
      base_(base),
      bytes_(bytes),
      slot_bytes_(slot_bytes),
      header_(static_cast<Header*>(base)) {
  header_->pid[rank] = ::getpid();
}

ShmAllReduce::~ShmAllReduce() { ::munmap(base_, bytes_); }

char* ShmAllReduce::slot(int rank) const {
  return static_cast<char*>(base_) + header_bytes() +
         slot_bytes_ * static_cast<std::size_t>(rank);
}

// Two result areas, alternating by call: a rank that has moved on to the next
// call may write a result while a slower one still copies out this one.
char* ShmAllReduce::result(std::uint64_t call) const {
  return slot(world_size_ + static_cast<int>(call & 1));
}

bool ShmAllReduce::supports(const DLTensor& t) { return reducible_on_cpu(t); }

void ShmAllReduce::wait_for_all(bool reduced, std::uint64_t call) {
  const Counter* counters = reduced ? header_->reduced : header_->arrived;
  const auto deadline = std::chrono::steady_clock::now() + timeout_;
  for (int r = 0; r < world_size_; ++r) {
    for (int spins = 0; counters[r].value.load(std::memory_order_acquire) < call; ++spins) {
      if (spins < kSpinsBeforeYield) {
        _mm_pause();
        continue;
      }
      // Yielding keeps spinning cheap when ranks outnumber cores.
      ::sched_yield();
      if (spins % 1024 != 0) continue;
      const std::string who = "rank " + std::to_string(r);
      if (::kill(header_->pid[r], 0) != 0 && errno == ESRCH)
        throw std::runtime_error(who + " exited during a shared-memory all-reduce");
      if (std::chrono::steady_clock::now() > deadline)
        throw std::runtime_error(who + " did not reach shared-memory all-reduce #" +
                                 std::to_string(call) + " within " +
                                 std::to_string(timeout_.count()) + " ms");
    }
  }
}

void ShmAllReduce::reduce_piece(char* data, std::size_t bytes, const DLDataType& dtype,
                                flare_reduce_op op) {
  const std::uint64_t call = ++calls_;
  std::memcpy(slot(rank_), data, bytes);
  header_->arrived[rank_].value.store(call, std::memory_order_release);
  wait_for_all(false, call);

  // This rank's chunk, in whole cache lines so no two ranks write one line.
  const std::size_t lines = (bytes + kCacheLine - 1) / kCacheLine;
  const std::size_t per_rank = (lines + world_size_ - 1) / world_size_;
  const std::size_t begin = std::min(bytes, per_rank * rank_ * kCacheLine);
  const std::size_t end = std::min(bytes, begin + per_rank * kCacheLine);
  char* out = result(call);
  if (end > begin) {
    std::memcpy(out + begin, slot(0) + begin, end - begin);
    for (int r = 1; r < world_size_; ++r)
      combine(out + begin, slot(r) + begin, end - begin, dtype, op);
  }
  header_->reduced[rank_].value.store(call, std::memory_order_release);
  wait_for_all(true, call);
  std::memcpy(data, out, bytes);
}

void ShmAllReduce::all_reduce(DLTensor& t, flare_reduce_op op) {
  const std::size_t element = t.dtype.bits / 8;
  const std::size_t total = static_cast<std::size_t>(flare::num_elements(t)) * element;
  char* data = static_cast<char*>(t.data) + t.byte_offset;
  // Pieces of whole elements.
  const std::size_t piece = slot_bytes_ / element * element;
  std::lock_guard<std::mutex> lock(mutex_);
  for (std::size_t at = 0; at < total; at += piece)
    reduce_piece(data + at, std::min(piece, total - at), t.dtype, op);
}

}  // namespace flare::collectives
