#include "storage/atomic_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>

namespace flare::storage {
namespace {

std::string describe_errno(const std::string& what, const std::filesystem::path& file) {
  return what + " " + file.string() + ": " + std::strerror(errno);
}

void fsync_folder(const std::filesystem::path& folder) {
  int fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;  // Some file systems refuse; the rename has happened anyway.
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

AtomicFile::AtomicFile(std::filesystem::path target) : target_(std::move(target)) {
  static std::atomic<unsigned> counter{0};
  // Same folder as the target, so rename() stays within one file system.
  auto name = "." + target_.filename().string() + ".tmp-" + std::to_string(::getpid()) + "-" +
              std::to_string(counter++);
  temp_ = target_.parent_path() / name;
  fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd_ < 0) throw StorageError(describe_errno("cannot create temp file for", target_));
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(temp_.c_str());
  }
}

void AtomicFile::write(std::span<const std::byte> bytes) {
  if (fd_ < 0) throw StorageError("write after commit of " + target_.string());
  auto* p = reinterpret_cast<const char*>(bytes.data());
  std::size_t left = bytes.size();
  while (left > 0) {
    ssize_t n = ::write(fd_, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw StorageError(describe_errno("cannot write", target_));
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

void AtomicFile::write(std::string_view bytes) {
  write(std::as_bytes(std::span(bytes.data(), bytes.size())));
}

void AtomicFile::commit() {
  if (fd_ < 0) throw StorageError("commit twice of " + target_.string());
  if (::fsync(fd_) != 0) throw StorageError(describe_errno("cannot fsync", target_));
  int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) {
    ::unlink(temp_.c_str());
    throw StorageError(describe_errno("cannot close", target_));
  }
  if (::rename(temp_.c_str(), target_.c_str()) != 0) {
    auto message = describe_errno("cannot rename temp file onto", target_);
    ::unlink(temp_.c_str());
    throw StorageError(message);
  }
  fsync_folder(target_.parent_path().empty() ? "." : target_.parent_path());
}

void write_file_atomically(const std::filesystem::path& file, std::string_view bytes) {
  AtomicFile out(file);
  out.write(bytes);
  out.commit();
}

}  // namespace flare::storage
