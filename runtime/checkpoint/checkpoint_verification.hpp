// The checks of one checkpoint file before it is parsed: its SHA-256 trailer,
// and when that does not match, what is wrong in words (truncated, trailing
// bytes, a changed byte), so an operator sees more than "bad checksum".
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>

namespace flare::checkpoint {

inline constexpr std::size_t kDigestBytes = 32;

// Incremental SHA-256 (OpenSSL EVP).
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(std::span<const std::byte> bytes);
  std::array<std::byte, kDigestBytes> finish();

 private:
  void* context_;
};

// Nothing when `file`'s trailer is the SHA-256 of the bytes before it;
// otherwise the reason it is not ("truncated: ...", ...).
std::optional<std::string> checksum_problem(const std::filesystem::path& file);

}  // namespace flare::checkpoint
