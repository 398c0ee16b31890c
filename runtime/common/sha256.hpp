// Incremental SHA-256 (OpenSSL EVP): the one hasher behind the checksums the
// runtime writes and checks (the audit's hashes of accepted models, a site
// policy's plugin pins, round checkpoints' trailers).
#pragma once

#include <array>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>

namespace flare::common {

inline constexpr std::size_t kSha256Bytes = 32;
using Sha256Digest = std::array<std::byte, kSha256Bytes>;

class Sha256 {
 public:
  Sha256();  // throws std::runtime_error when OpenSSL cannot start one
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(std::span<const std::byte> bytes);
  void update(std::string_view bytes) { update(std::as_bytes(std::span(bytes))); }
  Sha256Digest finish();  // once

 private:
  void* context_;  // EVP_MD_CTX, kept out of this header
};

// Lowercase hex, as sha256sum prints it.
std::string to_hex(std::span<const std::byte> bytes);

}  // namespace flare::common
