#include "heartbeat/heartbeat.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

namespace flare::heartbeat {

using Clock = std::chrono::steady_clock;

// One page, shared by the rank (writer) and its supervisor (reader). The
// atomics are lock-free, hence usable across processes.
struct HeartbeatFile::Record {
  std::atomic<int64_t> progress_ns;
  std::atomic<int32_t> state;
  std::atomic<int32_t> error_length;
  std::atomic<int32_t> error_in_collective;
  char error[3968];
};
static_assert(std::atomic<int64_t>::is_always_lock_free);

namespace {

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

void* map_file(const std::filesystem::path& file, int flags, size_t size) {
  const int fd = ::open(file.c_str(), flags | O_CLOEXEC, 0600);
  if (fd < 0)
    throw std::runtime_error("cannot open heartbeat file " + file.string() + ": " +
                             std::strerror(errno));
  if ((flags & O_TRUNC) && ::ftruncate(fd, static_cast<off_t>(size)) != 0) {
    ::close(fd);
    throw std::runtime_error("cannot size heartbeat file " + file.string());
  }
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED)
    throw std::runtime_error("cannot map heartbeat file " + file.string() + ": " +
                             std::strerror(errno));
  return p;
}

}  // namespace

std::optional<std::chrono::duration<double>> hung_for(const HeartbeatReading& reading,
                                                      Clock::time_point now,
                                                      std::chrono::duration<double> timeout) {
  if (reading.state != RankState::Busy || timeout.count() <= 0) return std::nullopt;
  const std::chrono::duration<double> quiet = now - reading.last_progress;
  if (quiet <= timeout) return std::nullopt;
  return quiet;
}

HeartbeatFile HeartbeatFile::create(const std::filesystem::path& file) {
  static_assert(sizeof(Record) <= 4096, "one page");
  // A new file (new inode) is zero-filled: the Starting state, no error. An
  // earlier rank that still maps the old one cannot touch it.
  std::error_code ignored;
  std::filesystem::remove(file, ignored);
  auto* record =
      static_cast<Record*>(map_file(file, O_RDWR | O_CREAT | O_TRUNC, sizeof(Record)));
  record->progress_ns.store(now_ns());
  return HeartbeatFile(record);
}

HeartbeatFile HeartbeatFile::open(const std::filesystem::path& file) {
  return HeartbeatFile(static_cast<Record*>(map_file(file, O_RDWR, sizeof(Record))));
}

HeartbeatFile::HeartbeatFile(HeartbeatFile&& other) noexcept : record_(other.record_) {
  other.record_ = nullptr;
}

HeartbeatFile::~HeartbeatFile() {
  if (record_) ::munmap(record_, sizeof(Record));
}

void HeartbeatFile::set_state(RankState state) {
  record_->progress_ns.store(now_ns(), std::memory_order_relaxed);
  record_->state.store(static_cast<int32_t>(state), std::memory_order_release);
}

void HeartbeatFile::progress() {
  record_->progress_ns.store(now_ns(), std::memory_order_release);
}

void HeartbeatFile::set_fatal_error(std::string_view message, bool in_collective) {
  const size_t n = std::min(message.size(), sizeof(record_->error));
  std::memcpy(record_->error, message.data(), n);
  record_->error_in_collective.store(in_collective ? 1 : 0, std::memory_order_relaxed);
  record_->error_length.store(static_cast<int32_t>(n), std::memory_order_release);
}

HeartbeatReading HeartbeatFile::read() const {
  HeartbeatReading r;
  r.state = static_cast<RankState>(record_->state.load(std::memory_order_acquire));
  const int64_t progress_ns = record_->progress_ns.load(std::memory_order_acquire);
  r.last_progress = Clock::time_point(std::chrono::nanoseconds(progress_ns));
  const int32_t n = record_->error_length.load(std::memory_order_acquire);
  if (n > 0) r.fatal_error.assign(record_->error, std::min<size_t>(n, sizeof(record_->error)));
  r.failed_in_collective = n > 0 && record_->error_in_collective.load() != 0;
  return r;
}

}  // namespace flare::heartbeat
