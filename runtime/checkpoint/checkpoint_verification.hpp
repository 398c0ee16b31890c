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

#include "common/sha256.hpp"

namespace flare::checkpoint {

inline constexpr std::size_t kDigestBytes = common::kSha256Bytes;

// Nothing when `file`'s trailer is the SHA-256 of the bytes before it;
// otherwise the reason it is not ("truncated: ...", ...).
std::optional<std::string> checksum_problem(const std::filesystem::path& file);

}  // namespace flare::checkpoint
