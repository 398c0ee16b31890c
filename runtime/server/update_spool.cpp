#include "server/update_spool.hpp"

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

namespace flare::server {

namespace {

constexpr uint64_t kAlignment = 64;

std::runtime_error os_error(const std::string& what) {
  return std::runtime_error(what + ": " + std::strerror(errno));
}

}  // namespace

UpdateSpool::UpdateSpool(std::filesystem::path dir) : dir_(std::move(dir)) {}

UpdateSpool::~UpdateSpool() {
  if (fd_ >= 0) ::close(fd_);
}

void UpdateSpool::open() {
  fd_ = ::open(dir_.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd_ >= 0) return;
  // A file system without O_TMPFILE: a named file, unlinked at once.
  std::string name = (dir_ / "update-spool.XXXXXX").string();
  fd_ = ::mkostemp(name.data(), O_CLOEXEC);
  if (fd_ < 0) throw os_error("cannot create a spool file for an update in " + dir_.string());
  ::unlink(name.c_str());
}

uint64_t UpdateSpool::append(std::span<const std::byte> bytes, bool aligned) {
  if (fd_ < 0) open();
  if (aligned) size_ = (size_ + kAlignment - 1) / kAlignment * kAlignment;
  const uint64_t at = size_;
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::pwrite(fd_, bytes.data() + done, bytes.size() - done,
                               static_cast<off_t>(at + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw os_error("cannot write an update's spool file in " + dir_.string());
    done += static_cast<size_t>(n);
  }
  size_ = at + bytes.size();
  return at;
}

void UpdateSpool::read(uint64_t offset, std::span<std::byte> out) const {
  size_t done = 0;
  while (done < out.size()) {
    const ssize_t n =
        ::pread(fd_, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw os_error("cannot read an update's spool file back");
    done += static_cast<size_t>(n);
  }
}

UpdateSpool::Mapping UpdateSpool::map() const {
  if (size_ == 0) return Mapping(nullptr, 0);
  void* p = ::mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd_, 0);
  if (p == MAP_FAILED) throw os_error("cannot map an update's spool file");
  return Mapping(static_cast<const std::byte*>(p), size_);
}

bool UpdateSpool::Mapping::contains(const void* p, size_t bytes) const {
  const auto* b = static_cast<const std::byte*>(p);
  return data_ && b >= data_ && bytes <= size_ && b - data_ <= static_cast<ptrdiff_t>(size_ - bytes);
}

void UpdateSpool::Mapping::release_pages(const void* p, size_t bytes) const {
  const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto begin = reinterpret_cast<uintptr_t>(p);
  // Only pages wholly inside the range: a neighbour's bytes stay mapped.
  const uintptr_t first = (begin + page - 1) / page * page;
  const uintptr_t last = (begin + bytes) / page * page;
  // A hint: on failure the pages just stay resident.
  if (last > first) ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

UpdateSpool::Mapping::~Mapping() {
  if (data_) ::munmap(const_cast<std::byte*>(data_), size_);
}

}  // namespace flare::server
