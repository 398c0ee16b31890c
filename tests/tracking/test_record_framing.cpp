// CRC-32C and TFRecord framing, the container of TensorBoard's event files:
// standard check values, both CRC paths agreeing, and records laid out byte
// for byte as TensorFlow's reader expects them.
#include <doctest/doctest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "tracking/crc32c.hpp"
#include "tracking/record_framing.hpp"

using namespace flare::tracking;

namespace {

std::span<const std::byte> bytes_of(std::string_view text) {
  return std::as_bytes(std::span(text.data(), text.size()));
}

template <class T>
T read_le(const std::string& bytes, size_t at) {
  T value;
  std::memcpy(&value, bytes.data() + at, sizeof(T));
  return value;
}

}  // namespace

TEST_CASE("CRC-32C gives the standard check value and the published test vectors") {
  CHECK(crc32c(bytes_of("123456789")) == 0xE3069283u);
  CHECK(crc32c_portable(bytes_of("123456789")) == 0xE3069283u);
  CHECK(crc32c(bytes_of("")) == 0u);
  // RFC 3720, B.4: 32 bytes of zeros, and of 0xFF.
  CHECK(crc32c(bytes_of(std::string(32, '\0'))) == 0x8A9136AAu);
  CHECK(crc32c(bytes_of(std::string(32, '\xFF'))) == 0x62A8AB43u);
}

TEST_CASE("the hardware and the table CRC agree at every length and alignment") {
  std::mt19937 random(7);
  std::string data(1000, '\0');
  for (char& c : data) c = static_cast<char>(random());
  for (size_t offset = 0; offset < 9; ++offset)
    for (size_t length : {0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 500, 991}) {
      CAPTURE(offset);
      CAPTURE(length);
      const auto piece = bytes_of(std::string_view(data).substr(offset, length));
      CHECK(crc32c(piece) == crc32c_portable(piece));
    }
}

TEST_CASE("a masked CRC is the CRC rotated right by 15 bits plus 0xa282ead8") {
  const uint32_t crc = 0xE3069283u;
  CHECK(masked_crc32c(bytes_of("123456789")) == ((crc >> 15) | (crc << 17)) + 0xA282EAD8u);
}

TEST_CASE("a record is its length, the length's masked CRC, the data and the data's masked CRC") {
  const std::string data = "an event";
  const std::string record = frame_record(data);
  REQUIRE(record.size() == data.size() + 16);
  CHECK(read_le<uint64_t>(record, 0) == data.size());
  CHECK(read_le<uint32_t>(record, 8) == masked_crc32c(bytes_of(record.substr(0, 8))));
  CHECK(record.substr(12, data.size()) == data);
  CHECK(read_le<uint32_t>(record, 12 + data.size()) == masked_crc32c(bytes_of(data)));
  // An empty record is still framed.
  const std::string empty = frame_record("");
  REQUIRE(empty.size() == 16);
  CHECK(read_le<uint64_t>(empty, 0) == 0);
  CHECK(read_le<uint32_t>(empty, 12) == masked_crc32c({}));
}
