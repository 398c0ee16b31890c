#include "tracking/record_framing.hpp"

#include <bit>
#include <cstdint>
#include <span>

#include "tracking/crc32c.hpp"

namespace flare::tracking {

namespace {

static_assert(std::endian::native == std::endian::little, "TFRecord fields are little-endian");

template <class T>
void append_le(std::string& out, T value) {
  out.append(reinterpret_cast<const char*>(&value), sizeof(value));
}

std::span<const std::byte> bytes_of(std::string_view text) {
  return std::as_bytes(std::span(text.data(), text.size()));
}

}  // namespace

std::string frame_record(std::string_view data) {
  std::string record;
  record.reserve(data.size() + 16);
  append_le<uint64_t>(record, data.size());
  append_le<uint32_t>(record, masked_crc32c(bytes_of(record)));
  record.append(data);
  append_le<uint32_t>(record, masked_crc32c(bytes_of(data)));
  return record;
}

}  // namespace flare::tracking
