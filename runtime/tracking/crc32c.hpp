// CRC-32C (Castagnoli), as TFRecord framing checksums lengths and payloads.
// SSE4.2's crc32 instruction where the CPU has it, a table otherwise; both
// give the same value (the check value of "123456789" is 0xE3069283).
#pragma once

#include <cstdint>
#include <span>

namespace flare::tracking {

uint32_t crc32c(std::span<const std::byte> bytes);
// The table version, whatever the CPU (for the tests, which compare both).
uint32_t crc32c_portable(std::span<const std::byte> bytes);
// TFRecord stores CRCs masked (rotated and offset), so a CRC of data that
// itself holds CRCs does not degenerate.
uint32_t masked_crc32c(std::span<const std::byte> bytes);

}  // namespace flare::tracking
