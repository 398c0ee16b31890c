#include "checkpoint/checkpoint_verification.hpp"


#include <algorithm>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <vector>

#include <nlohmann/json.hpp>

namespace flare::checkpoint {
namespace {

// The file size its safetensors header describes, checksum trailer included,
// or nothing when the header itself is unreadable. Only to word a checksum
// mismatch: the checksum alone decides whether the file is trusted.
struct DescribedSize {
  std::uint64_t content = 0;  // length prefix + header + tensor bytes
  std::optional<std::string> problem;
};

DescribedSize described_size(std::ifstream& in, std::uint64_t size) {
  DescribedSize d;
  if (size < 8) {
    d.problem = "truncated: " + std::to_string(size) + " bytes, not even the 8-byte header length";
    return d;
  }
  std::uint64_t header_length = 0;
  in.read(reinterpret_cast<char*>(&header_length), 8);
  if (header_length > size - 8) {
    d.problem = "truncated: " + std::to_string(size) + " bytes, ending inside its header of " +
                std::to_string(header_length) + " bytes";
    return d;
  }
  std::string text(header_length, '\0');
  in.read(text.data(), static_cast<std::streamsize>(header_length));
  std::uint64_t end = 0;
  try {
    auto header = nlohmann::json::parse(text);
    for (const auto& [key, value] : header.items()) {
      if (value.contains("data_offsets"))
        end = std::max(end, value["data_offsets"][1].get<std::uint64_t>());
    }
  } catch (const std::exception&) {
    return d;  // a changed header: said by the mismatch itself
  }
  d.content = 8 + header_length + end;
  return d;
}

}  // namespace

std::optional<std::string> checksum_problem(const std::filesystem::path& file) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(file, ec);
  if (ec) return "unreadable: " + ec.message();
  std::ifstream in(file, std::ios::binary);
  if (!in) return std::string("unreadable: cannot open");

  if (size >= kDigestBytes) {
    common::Sha256 sha;
    std::vector<char> buffer(1 << 20);
    std::uint64_t left = size - kDigestBytes;
    while (left > 0 && in) {
      auto n = static_cast<std::streamsize>(std::min<std::uint64_t>(left, buffer.size()));
      in.read(buffer.data(), n);
      sha.update(std::as_bytes(std::span(buffer.data(), static_cast<std::size_t>(in.gcount()))));
      left -= static_cast<std::uint64_t>(in.gcount());
    }
    std::array<std::byte, kDigestBytes> trailer{};
    in.read(reinterpret_cast<char*>(trailer.data()), kDigestBytes);
    if (!in) return std::string("unreadable: a read failed");
    if (sha.finish() == trailer) return std::nullopt;
  }

  in.clear();
  in.seekg(0);
  auto described = described_size(in, size);
  if (described.problem) return described.problem;
  if (described.content > 0) {
    const auto expected = described.content + kDigestBytes;
    if (size == described.content) return std::string("truncated: the 32-byte SHA-256 trailer is missing");
    if (size < expected) {
      return "truncated: " + std::to_string(size) + " bytes of the " + std::to_string(expected) +
             " its header describes";
    }
    if (size > expected) {
      return "trailing bytes: " + std::to_string(size) + " bytes, its header describes " +
             std::to_string(expected);
    }
  }
  return std::string("SHA-256 mismatch: the content changed after it was written");
}

}  // namespace flare::checkpoint
