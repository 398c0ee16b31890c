#include "policy/file_digest.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <memory>

#include "common/sha256.hpp"

namespace flare::policy {

namespace {

[[noreturn]] void fail(const std::filesystem::path& file, const std::string& why) {
  throw std::runtime_error("cannot hash " + file.string() + ": " + why);
}

}  // namespace

std::string sha256_of_fd(int fd, const std::filesystem::path& named_as) {
  common::Sha256 sha;
  std::array<std::byte, 1 << 16> buffer;
  for (off_t offset = 0;;) {
    const ssize_t n = ::pread(fd, buffer.data(), buffer.size(), offset);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail(named_as, std::strerror(errno));
    }
    if (n == 0) break;
    sha.update(std::span(buffer.data(), static_cast<size_t>(n)));
    offset += n;
  }
  return common::to_hex(sha.finish());
}

std::string sha256_of_file(const std::filesystem::path& file) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(file, std::strerror(errno));
  try {
    auto digest = sha256_of_fd(fd, file);
    ::close(fd);
    return digest;
  } catch (...) {
    ::close(fd);
    throw;
  }
}

}  // namespace flare::policy
