// TFRecord framing, the container of TensorBoard's event files: each record is
// its length (uint64, little-endian), the masked CRC-32C of those 8 bytes,
// the data, and the masked CRC-32C of the data. A reader checks both CRCs, so
// a torn last record (a crash mid-write) is noticed, not misread.
#pragma once

#include <string>
#include <string_view>

namespace flare::tracking {

// `data` framed as one record (16 bytes longer).
std::string frame_record(std::string_view data);

}  // namespace flare::tracking
